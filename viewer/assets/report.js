// ncclfr report: draws the verdict and one timeline per communicator from the JSON in
// #ncclfr-data (docs/viewer.md describes it). Everything that came from a dump is untrusted: it
// only ever reaches the page through textContent or setAttribute of a fixed, harmless attribute,
// never through innerHTML. The page makes no request (its Content-Security-Policy forbids them).
(function () {
  'use strict';

  var SVGNS = 'http://www.w3.org/2000/svg';
  var GROUP_ABOVE = 16;      // communicators larger than this group their ranks by state
  var MEMBERS_PER_PAGE = 50; // ranks listed when a group is expanded, per click
  var COMMS_PER_PAGE = 25;   // communicator cards per "show more"
  var OPEN_AT_START = 3;     // timelines drawn when the page opens
  var LABEL_W = 250, LANE_H = 22, BAR_H = 14, AXIS_H = 34, RIGHT_PAD = 12;
  var MINUS = '\u2212';

  // ---------------------------------------------------------------- DOM helpers (no innerHTML)
  function h(tag, props) {
    var el = document.createElement(tag);
    if (props) {
      for (var k in props) {
        if (!Object.prototype.hasOwnProperty.call(props, k)) continue;
        var v = props[k];
        if (v === undefined || v === null) continue;
        if (k === 'text') el.textContent = String(v);
        else if (k === 'cls') el.className = v;
        else if (k === 'on') { for (var ev in v) el.addEventListener(ev, v[ev]); }
        else el.setAttribute(k, String(v));
      }
    }
    for (var i = 2; i < arguments.length; i++) add(el, arguments[i]);
    return el;
  }
  function add(el, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { add(el, c); }); return; }
    el.appendChild(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  function s(tag, attrs, text) {
    var el = document.createElementNS(SVGNS, tag);
    if (attrs) {
      for (var k in attrs) {
        var v = attrs[k];
        if (v === undefined || v === null) continue;
        // Damaged dumps can carry absurd times; never hand SVG a NaN (it logs an error).
        if (typeof v === 'number' && !isFinite(v)) v = 0;
        el.setAttribute(k, String(v));
      }
    }
    if (text !== undefined) el.textContent = String(text);
    return el;
  }
  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); }

  // ---------------------------------------------------------------- formatting (human units)
  function plural(n, one, many) { return fmtInt(n) + ' ' + (n === 1 ? one : (many || one + 's')); }
  function fmtInt(n) {
    var t = String(Math.abs(Math.round(n))), out = '';
    while (t.length > 3) { out = ',' + t.slice(-3) + out; t = t.slice(0, -3); }
    return (n < 0 ? MINUS : '') + t + out;
  }
  function fmtBytes(n) {
    if (!(n >= 0)) return '?';
    var units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'], u = 0;
    while (n >= 1024 && u < units.length - 1) { n /= 1024; u++; }
    return (u === 0 ? String(n) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + units[u];
  }
  // A duration given in microseconds.
  function fmtDur(us) {
    var a = Math.abs(us), sign = us < 0 ? MINUS : '';
    if (a < 1) return sign + (a * 1000).toFixed(0) + ' ns';
    if (a < 1000) return sign + a.toFixed(a < 10 ? 2 : a < 100 ? 1 : 0) + ' \u00b5s';
    if (a < 1e6) return sign + (a / 1e3).toFixed(a < 1e4 ? 2 : a < 1e5 ? 1 : 0) + ' ms';
    if (a < 120e6) return sign + (a / 1e6).toFixed(a < 1e7 ? 3 : 2) + ' s';
    var m = Math.floor(a / 60e6);
    return sign + m + ' min ' + ((a - m * 60e6) / 1e6).toFixed(0) + ' s';
  }
  // A time relative to the incident (t = 0), in microseconds.
  function fmtRel(us) {
    if (us === 0) return 't = 0';
    return 't ' + (us < 0 ? MINUS + ' ' : '+ ') + fmtDur(Math.abs(us));
  }
  // Exact to the microsecond, for details.
  function preciseRel(us) {
    if (us === 0) return 't = 0';
    var a = Math.abs(us);
    var t = a >= 1e6 ? (a / 1e6).toFixed(6) + ' s' : a >= 1e3 ? (a / 1e3).toFixed(3) + ' ms' : a.toFixed(3) + ' \u00b5s';
    return 't ' + (us < 0 ? MINUS + ' ' : '+ ') + t;
  }
  // An axis tick: the unit of the larger end of the axis, as many decimals as the step needs.
  function tickLabel(us, step, span) {
    if (Math.abs(us) < step / 1e6) return '0';
    var scale = span >= 1e6 ? 1e6 : span >= 1e3 ? 1e3 : 1, unit = scale === 1e6 ? ' s' : scale === 1e3 ? ' ms' : ' \u00b5s';
    var decimals = Math.max(0, Math.min(9, Math.ceil(-Math.log10(step / scale) - 1e-9)));
    return (us < 0 ? MINUS : '+') + (Math.abs(us) / scale).toFixed(decimals) + unit;
  }
  var DTYPE_BYTES = { int8: 1, uint8: 1, int32: 4, uint32: 4, int64: 8, uint64: 8, float16: 2, float32: 4,
    float64: 8, bfloat16: 2, float8e4m3: 1, float8e5m2: 1 };

  // ---------------------------------------------------------------- data
  var D, S, P, EN;
  try {
    D = JSON.parse(document.getElementById('ncclfr-data').textContent);
    S = D.strings; P = D.procs; EN = D.enums;
  } catch (err) {
    document.getElementById('verdict').appendChild(h('div', { cls: 'fatal', text: 'This report could not read its data: ' + err }));
    document.documentElement.setAttribute('data-ready', 'error');
    return;
  }
  function str(i) { return i >= 0 && i < S.length ? S[i] : ''; }
  function enumName(list, i) { return i >= 0 && i < list.length ? list[i] : 'unknown(' + i + ')'; }
  var V = D.verdict;
  var RS = EN.rankState;  // completed, not_enqueued, queued, started, pending, unknown, missing
  var RS_NOT_ENQUEUED = RS.indexOf('not_enqueued'), RS_MISSING = RS.indexOf('missing');
  // Severity of a rank's state at the frontier: behind first.
  var RS_ORDER = { not_enqueued: 0, missing: 1, queued: 2, pending: 3, unknown: 4, started: 5, completed: 6 };
  var ES = EN.state;      // scheduled, started, completed, error, captured
  var ES_RANK = { error: 0, scheduled: 1, started: 2, unknown: 3, captured: 4, completed: 5 };

  function procLabel(pi) {
    if (pi < 0) return '';
    var r = P.rank[pi];
    return r >= 0 ? 'rank ' + r : str(P.host[pi]) + ':' + P.pid[pi];
  }
  function procWhere(pi) { return pi < 0 ? '' : str(P.host[pi]) + ':' + P.pid[pi]; }
  function timingName(pi) { return pi < 0 ? '' : enumName(EN.timing, P.timing[pi]); }

  // Suspects by (comm id, comm rank) and by global rank / process, for marking lanes.
  var suspectByCommRank = {}, suspectByRank = {}, chainByRank = {};
  (V.suspects || []).forEach(function (sp, i) {
    if (sp.comm) suspectByCommRank[sp.comm + '/' + sp.comm_rank] = sp;
    var key = sp.rank !== null && sp.rank !== undefined ? 'r' + sp.rank : 'h' + sp.host + ':' + sp.pid;
    if (!suspectByRank[key]) suspectByRank[key] = { s: sp, index: i };
    (sp.chain || []).forEach(function (l) {
      var k = l.rank !== null && l.rank !== undefined ? 'r' + l.rank : 'h' + l.host + ':' + l.pid;
      chainByRank[k] = true;
    });
  });
  function procKey(pi) { return P.rank[pi] >= 0 ? 'r' + P.rank[pi] : 'h' + str(P.host[pi]) + ':' + P.pid[pi]; }

  var commIndexById = {};
  D.comms.forEach(function (c, i) { if (!(c.id in commIndexById)) commIndexById[c.id] = i; });

  // ---------------------------------------------------------------- per-communicator model
  var models = {};
  function model(ci) {
    if (models[ci]) return models[ci];
    var c = D.comms[ci], m = c.m, e = c.e, members = [], off = 0;
    var tMin = Infinity, tMax = -Infinity, seqMin = Infinity, seqMax = -Infinity;
    for (var i = 0; i + 8 < m.length; i += 9) {
      var mem = { cr: m[i], pi: m[i + 1], st: m[i + 2], le: m[i + 3], ls: m[i + 4], lc: m[i + 5], ae: m[i + 6],
        cs: m[i + 7], entries: [] };
      var ne = m[i + 8], enq = 0;
      for (var k = 0; k < ne && off + 6 < e.length; k++, off += 7) {
        enq += e[off + 4];
        var so = e[off + 5], eo = e[off + 6];
        var ent = { seq: c.lo + e[off], sig: e[off + 1], state: e[off + 2], p2p: e[off + 3], enq: enq,
          start: so < 0 ? null : enq + so / 1000, end: eo < 0 ? null : enq + eo / 1000 };
        var sig = c.sigs[ent.sig] || [0, 0, 0, -1, 0];
        ent.op = enumName(EN.op, sig[0]);
        ent.isP2P = ent.op === 'send' || ent.op === 'recv';
        mem.entries.push(ent);
        tMin = Math.min(tMin, enq);
        if (ent.end !== null) tMax = Math.max(tMax, ent.end);
        seqMin = Math.min(seqMin, ent.seq);
        seqMax = Math.max(seqMax, ent.seq + (ent.isP2P ? 1 : 0));
      }
      mem.dump = mem.pi >= 0 ? P.dump[mem.pi] : 0;
      if (mem.pi >= 0) tMax = Math.max(tMax, mem.dump);
      mem.suspect = suspectByCommRank[c.id + '/' + mem.cr] || null;
      mem.rankSuspect = mem.pi >= 0 ? (suspectByRank[procKey(mem.pi)] || null) : null;
      mem.inChain = mem.pi >= 0 && !!chainByRank[procKey(mem.pi)];
      members.push(mem);
    }
    (c.missing || []).forEach(function (x) {
      members.forEach(function (mem) { if (mem.cr === x[0] && mem.pi < 0) mem.missingLabel = x[2] + (x[2].indexOf('comm ') === 0 ? '' : ' \u00b7 r' + x[0]); });
    });
    if (!isFinite(tMin)) { tMin = -1e6; }
    if (!isFinite(tMax) || tMax <= tMin) tMax = tMin + 1e6;
    // At the first mismatching sequence number, the call most ranks made is the reference; bars
    // that differ from it are marked.
    var majoritySig = -1;
    if (c.mm >= 0) {
      var votes = {};
      members.forEach(function (mem) { mem.entries.forEach(function (ent) { if (!ent.isP2P && ent.seq === c.mm) votes[ent.sig] = (votes[ent.sig] || 0) + 1; }); });
      var best = -1;
      Object.keys(votes).forEach(function (k) { if (votes[k] > best) { best = votes[k]; majoritySig = +k; } });
    }
    var F = c.fr;
    if (c.hi >= 0) { seqMin = Math.min(seqMin, c.lo); seqMax = Math.max(seqMax, F >= 0 ? F : c.hi); }
    if (!isFinite(seqMin)) { seqMin = 0; seqMax = 0; }
    var md = { c: c, ci: ci, members: members, tMin: tMin, tMax: tMax, seqMin: seqMin, seqMax: seqMax,
      F: F, majoritySig: majoritySig };
    models[ci] = md;
    return md;
  }

  function sigOf(c, ent) { return c.sigs[ent.sig] || [0, 0, 0, -1, 0]; }
  function entryStateName(mem, ent) {
    var n = enumName(ES, ent.state);
    // The communicator's counters are exact even where an entry's own state was not updated (its
    // GPU event was not polled before the dump): a collective at or below them got that far.
    if (!ent.isP2P && (n === 'scheduled' || n === 'started')) {
      if (ent.seq <= mem.lc) return 'completed';
      if (n === 'scheduled' && ent.seq <= mem.ls) return 'started';
    }
    // Without GPU completion events a call stays "scheduled" forever: say "unknown" instead (the
    // analyzer may also find a rank's recorder measured nothing, whatever its timing mode says).
    if (n === 'scheduled' && mem.pi >= 0 && (timingName(mem.pi) === 'hostOnly' || RS[mem.st] === 'unknown')) return 'unknown';
    return n;
  }

  // ---------------------------------------------------------------- lanes
  // A lane is one rank, or a group of ranks in the same state at the frontier (drawn as the
  // envelope of its members' calls), optionally expanded into its members.
  function buildLanes(view) {
    var md = model(view.ci), c = md.c, lanes = [];
    var group = view.group && c.size > GROUP_ABOVE;
    var singles = [], groups = {};
    md.members.forEach(function (mem) {
      var alone = !group || mem.suspect || mem.rankSuspect || mem.inChain || (view.focus && view.focus(mem));
      if (alone) { singles.push(mem); return; }
      var key = String(mem.st);
      (groups[key] = groups[key] || []).push(mem);
    });
    singles.forEach(function (mem) { lanes.push(rankLane(view, mem, false)); });
    Object.keys(groups).sort(function (a, b) {
      return (RS_ORDER[RS[a]] - RS_ORDER[RS[b]]) || (a - b);
    }).forEach(function (key) {
      var mems = groups[key];
      if (mems.length === 1) { lanes.push(rankLane(view, mems[0], false)); return; }
      var g = { kind: 'group', key: key, members: mems, st: +key, label: fmtInt(mems.length) + ' ranks \u00b7 ' + RS[key].replace('_', ' ') };
      g.bars = groupBars(view, md, g);
      lanes.push(g);
      var shown = view.expanded[key];
      if (shown) {
        mems.slice(0, shown).forEach(function (mem) { lanes.push(rankLane(view, mem, true)); });
        if (mems.length > shown) lanes.push({ kind: 'more', key: key, left: mems.length - shown });
      }
    });
    return lanes;
  }

  function rankLane(view, mem, asMember) {
    var md = model(view.ci), c = md.c;
    var label = mem.pi >= 0 ? procLabel(mem.pi) : (mem.missingLabel || 'comm rank ' + mem.cr) + ' (no dump)';
    if (mem.pi >= 0 && P.rank[mem.pi] >= 0 && c.size > 1) label += ' \u00b7 r' + mem.cr;
    var lane = { kind: 'rank', mem: mem, member: asMember, label: label, bars: [] };
    mem.entries.forEach(function (ent, i) {
      var st = entryStateName(mem, ent);
      lane.bars.push({ ent: ent, mem: mem, idx: i, state: st, seq: ent.seq, p2p: ent.isP2P,
        frontier: !ent.isP2P && ent.seq === md.F && c.stalled,
        mismatch: !ent.isP2P && ent.seq === c.mm && md.majoritySig >= 0 && ent.sig !== md.majoritySig,
        waiting: st === 'scheduled' && ent.start === null && ent.end === null });
    });
    if (md.F >= 0 && c.stalled && mem.st === RS_NOT_ENQUEUED) {
      var last = md.tMin;
      mem.entries.forEach(function (ent) { last = Math.max(last, ent.end !== null ? ent.end : ent.start !== null ? ent.start : ent.enq); });
      lane.bars.push({ never: true, mem: mem, seq: md.F, frontier: true, t0: last, t1: Math.max(mem.dump, last) });
    }
    if (mem.pi < 0) lane.bars.push({ missingBar: true, mem: mem, seq: md.F });
    return lane;
  }

  function groupBars(view, md, g) {
    var byKey = {}, order = [];
    g.members.forEach(function (mem) {
      mem.entries.forEach(function (ent) {
        var key = ent.isP2P ? 'p' + ent.seq + '/' + ent.op + '/' + ent.p2p : 'c' + ent.seq;
        var b = byKey[key];
        if (!b) {
          b = byKey[key] = { agg: true, seq: ent.seq, p2p: ent.isP2P, op: ent.op, ent: ent, t0: Infinity, t1: -Infinity,
            counts: {}, n: 0, frontier: !ent.isP2P && ent.seq === md.F && md.c.stalled, state: 'completed', sigs: {} };
          order.push(b);
        }
        var st = entryStateName(mem, ent);
        b.counts[st] = (b.counts[st] || 0) + 1;
        b.n++;
        b.sigs[ent.sig] = (b.sigs[ent.sig] || 0) + 1;
        if (ES_RANK[st] < ES_RANK[b.state]) b.state = st;
        b.t0 = Math.min(b.t0, ent.enq);
        var finished = st === 'completed' || st === 'captured' || st === 'error';
        b.t1 = Math.max(b.t1, ent.end !== null ? ent.end : finished ? (ent.start !== null ? ent.start : ent.enq) : mem.dump);
      });
    });
    order.forEach(function (b) {
      b.waiting = b.state === 'scheduled' && !b.counts.started && !b.counts.completed && !b.counts.error;
    });
    if (md.F >= 0 && md.c.stalled && g.st === RS_NOT_ENQUEUED) {
      var last = md.tMin, dump = md.tMin;
      g.members.forEach(function (mem) {
        dump = Math.max(dump, mem.dump);
        mem.entries.forEach(function (ent) { last = Math.max(last, ent.end !== null ? ent.end : ent.enq); });
      });
      order.push({ never: true, agg: true, seq: md.F, frontier: true, t0: last, t1: Math.max(dump, last), n: g.members.length });
    }
    if (g.st === RS_MISSING) order.push({ missingBar: true, agg: true, seq: md.F, n: g.members.length });
    return order;
  }

  // ---------------------------------------------------------------- drawing
  function niceStep(span, target) {
    var raw = span / Math.max(1, target), p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
  }

  // The x extent of a bar in axis units (us in time mode, seq in sequence mode), or null.
  function barExtent(view, md, b, lane) {
    if (view.axis === 'seq') {
      if (b.missingBar) return [view.a, view.b];
      if (b.p2p) {
        // Sends and receives sit in the gap between the collective before them and the next one.
        return [b.seq + 0.36, b.seq + 0.64];
      }
      return [b.seq - 0.3, b.seq + 0.3];
    }
    if (b.missingBar) return [md.tMin, md.tMax];
    if (b.never) return [b.t0, b.t1];
    if (b.agg) return [b.t0, b.t1];
    var ent = b.ent, mem = b.mem;
    var x0 = ent.start !== null ? ent.start : ent.enq;
    // Pending calls run to the dump; a finished call whose end was not recorded is a sliver.
    var done = b.state === 'completed' || b.state === 'captured' || b.state === 'error';
    var x1 = ent.end !== null ? ent.end : done ? x0 : Math.max(mem.dump, x0);
    return [x0, x1];
  }

  function draw(view) {
    var md = model(view.ci), c = md.c;
    var lanes = view.lanes = buildLanes(view);
    var svg = view.svg;
    var W = Math.max(640, view.box.clientWidth || 900);
    var H = AXIS_H + lanes.length * LANE_H + 6;
    svg.setAttribute('width', W);
    svg.setAttribute('height', H);
    svg.setAttribute('viewBox', '0 0 ' + W + ' ' + H);
    clear(svg);
    var plotX = LABEL_W, plotW = W - LABEL_W - RIGHT_PAD;
    view.plotX = plotX; view.plotW = plotW;
    var a = view.a, bnd = view.b, k = plotW / (bnd - a);
    function X(v) { return plotX + (v - a) * k; }
    view.X = X;

    var clipId = 'clip-' + view.ci;
    var defs = s('defs');
    var cp = s('clipPath', { id: clipId });
    cp.appendChild(s('rect', { x: plotX, y: 0, width: plotW, height: H }));
    defs.appendChild(cp);
    svg.appendChild(defs);

    // Axis: ticks in human units, relative to the incident (time) or sequence numbers.
    var axis = s('g', { 'class': 'axis' });
    if (view.axis === 'seq') {
      var stepS = Math.max(1, Math.round(niceStep(bnd - a, plotW / 70)));
      for (var q = Math.ceil(a); q <= bnd; q += stepS) {
        axis.appendChild(s('line', { x1: X(q), x2: X(q), y1: AXIS_H - 6, y2: H }));
        axis.appendChild(s('text', { x: X(q), y: AXIS_H - 9, 'text-anchor': 'middle' }, '#' + q));
      }
    } else {
      var step = niceStep(bnd - a, plotW / 110), big = Math.max(Math.abs(a), Math.abs(bnd));
      for (var t = Math.ceil(a / step) * step; t <= bnd; t += step) {
        var zero = Math.abs(t) < step / 1e6;
        axis.appendChild(s('line', { x1: X(t), x2: X(t), y1: AXIS_H - 6, y2: H, 'class': zero ? 'zero' : null }));
        axis.appendChild(s('text', { x: X(t), y: AXIS_H - 9, 'text-anchor': 'middle' }, zero ? 'incident' : tickLabel(t, step, big)));
      }
    }
    axis.appendChild(s('text', { x: 8, y: AXIS_H - 9 }, view.axis === 'seq' ? 'collective #' : 'time from the incident'));
    svg.appendChild(axis);

    // The frontier: a band (sequence mode) or a line at its first enqueue (time mode).
    var plot = s('g', { 'clip-path': 'url(#' + clipId + ')' });
    if (md.F >= 0 && c.stalled) {
      if (view.axis === 'seq') {
        plot.appendChild(s('rect', { 'class': 'frontier-band', x: X(md.F - 0.5), y: AXIS_H - 4, width: Math.max(2, k), height: H - AXIS_H + 4 }));
      } else {
        var first = Infinity;
        md.members.forEach(function (mem) { mem.entries.forEach(function (ent) { if (!ent.isP2P && ent.seq === md.F) first = Math.min(first, ent.enq); }); });
        if (isFinite(first)) {
          plot.appendChild(s('line', { 'class': 'frontier-line', x1: X(first), x2: X(first), y1: AXIS_H - 4, y2: H }));
        }
      }
    }
    svg.appendChild(plot);

    var barsG = s('g', { 'class': 'lanes' });
    lanes.forEach(function (lane, li) {
      var y = AXIS_H + li * LANE_H;
      var cls = 'lane ' + lane.kind;
      if (lane.kind === 'rank' && (lane.mem.suspect || lane.mem.rankSuspect)) cls += ' suspect';
      if (lane.kind === 'rank' && view.focus && view.focus(lane.mem)) cls += ' focus';
      if (lane.kind === 'rank' && lane.mem.inChain && !(lane.mem.suspect || lane.mem.rankSuspect)) cls += ' chain';
      if (lane.member) cls += ' member';
      var g = s('g', { 'class': cls, 'data-lane': li });
      if (lane.kind === 'rank') {
        if (lane.mem.pi >= 0 && P.rank[lane.mem.pi] >= 0) g.setAttribute('data-rank', P.rank[lane.mem.pi]);
        g.setAttribute('data-comm-rank', lane.mem.cr);
        g.setAttribute('data-state', RS[lane.mem.st] || '');
      } else if (lane.kind === 'group') {
        g.setAttribute('data-state', RS[lane.st] || '');
        g.setAttribute('data-count', lane.members.length);
      }
      g.appendChild(s('rect', { 'class': 'lane-bg', x: 0, y: y, width: W, height: LANE_H }));
      if (lane.kind === 'more') {
        var more = s('g', { 'class': 'more-lane', 'data-more': lane.key });
        more.appendChild(s('text', { x: 24, y: y + 15 }, 'show ' + Math.min(MEMBERS_PER_PAGE, lane.left) + ' more (' + fmtInt(lane.left) + ' not shown)'));
        g.appendChild(more);
        barsG.appendChild(g);
        return;
      }
      var text = lane.label;
      if (lane.kind === 'group') text = (view.expanded[lane.key] ? '\u25be ' : '\u25b8 ') + text;
      else if (lane.member) text = '    ' + text;
      if (lane.kind === 'rank' && (lane.mem.suspect || lane.mem.rankSuspect)) {
        var sp = lane.mem.suspect || lane.mem.rankSuspect.s;
        text = '\u26a0 ' + text + ' \u00b7 ' + sp.reason.replace('_', ' ');
        g.appendChild(s('rect', { 'class': 'lane-mark', x: 0, y: y + 2, width: 4, height: LANE_H - 4 }));
      }
      else if (lane.kind === 'rank' && lane.mem.inChain) {
        text += ' \u00b7 in the chain';
        g.appendChild(s('rect', { 'class': 'lane-mark chain', x: 0, y: y + 2, width: 4, height: LANE_H - 4 }));
      }
      var lt = s('text', { 'class': 'lane-label', x: 8, y: y + 15, 'data-label': li }, text);
      g.appendChild(lt);
      var lanePlot = s('g', { 'clip-path': 'url(#' + clipId + ')' });
      var p2pSlots = {};
      var drawOrder = lane.bars.map(function (b, bi) { return bi; });
      drawOrder.sort(function (x, y2) { return (lane.bars[x].waiting ? 1 : 0) - (lane.bars[y2].waiting ? 1 : 0) || x - y2; });
      drawOrder.forEach(function (bi) {
        var b = lane.bars[bi];
        var ext = barExtent(view, md, b, lane);
        if (!ext) return;
        var x0 = X(ext[0]), x1 = X(ext[1]);
        if (x1 < plotX - 50 || x0 > plotX + plotW + 50) return;  // off screen
        var by = y + (LANE_H - BAR_H) / 2, bh = BAR_H;
        if (b.waiting && view.axis !== 'seq') {
          // Enqueued, not started: it waits behind the calls before it on its stream, so it takes
          // the lower half of the lane and leaves the running call above it in sight.
          by = y + LANE_H / 2; bh = LANE_H / 2 - 3;
        } else if (b.p2p) {
          if (view.axis === 'seq') {
            // Several sends/receives between the same two collectives share the gap.
            var slot = p2pSlots[b.seq] = (p2pSlots[b.seq] || 0) + 1;
            bh = BAR_H / 2; by = y + 2 + ((slot - 1) % 2) * (BAR_H / 2 + 1);
          } else { bh = BAR_H * 0.6; by = y + (LANE_H - bh) / 2; }
        }
        var w = Math.max(2, x1 - x0);
        var cls2 = 'bar';
        if (b.never) cls2 += ' never';
        else if (b.missingBar) cls2 += ' missing';
        else cls2 += ' st-' + b.state;
        if (b.p2p) cls2 += ' p2p';
        if (b.waiting) cls2 += ' waiting';
        if (b.frontier) cls2 += ' frontier';
        if (b.mismatch) cls2 += ' mismatch';
        if (view.selected && view.selected.lane === li && view.selected.bar === bi) cls2 += ' selected';
        // The wait before the GPU started it, lighter, in front of the bar.
        if (view.axis !== 'seq' && !b.agg && b.ent && b.ent.start !== null && b.ent.start > b.ent.enq) {
          var qx = X(b.ent.enq);
          lanePlot.appendChild(s('rect', { 'class': 'bar queue st-' + b.state, x: qx, y: by + bh * 0.3, width: Math.max(1, x0 - qx), height: bh * 0.4, 'data-lane': li, 'data-bar': bi }));
        }
        lanePlot.appendChild(s('rect', { 'class': cls2, x: x0, y: by, width: w, height: bh, rx: 2, 'data-lane': li, 'data-bar': bi, 'data-seq': b.seq }));
      });
      g.appendChild(lanePlot);
      barsG.appendChild(g);
    });
    svg.appendChild(barsG);

    if (md.F >= 0 && c.stalled) {
      var fx = view.axis === 'seq' ? X(md.F) : null;
      if (fx === null) {
        var first2 = Infinity;
        md.members.forEach(function (mem) { mem.entries.forEach(function (ent) { if (!ent.isP2P && ent.seq === md.F) first2 = Math.min(first2, ent.enq); }); });
        if (isFinite(first2)) fx = X(first2);
      }
      if (fx !== null && fx >= plotX && fx <= plotX + plotW) {
        svg.appendChild(s('text', { 'class': 'frontier-flag', x: fx + 3, y: 12 }, 'frontier #' + md.F + (c.frOp ? ' ' + c.frOp : '')));
      }
    }
  }

  // ---------------------------------------------------------------- tooltip and details
  var tooltip = document.getElementById('tooltip');
  function barAt(view, target) {
    var li = target.getAttribute('data-lane'), bi = target.getAttribute('data-bar');
    if (li === null || bi === null) return null;
    var lane = view.lanes[+li];
    return lane && lane.bars ? { lane: lane, bar: lane.bars[+bi], li: +li, bi: +bi } : null;
  }

  function entryLines(view, lane, b) {
    var md = model(view.ci), c = md.c, lines = [];
    if (b.never) {
      lines.push(['call', (c.frOp || 'collective') + ' #' + md.F + ' (the frontier)']);
      lines.push(['state', b.agg ? fmtInt(b.n) + ' ranks never issued it' : 'never issued']);
      lines.push(['waiting since', fmtRel(b.t0) + ' (its last call in this window)']);
      return lines;
    }
    if (b.missingBar) {
      lines.push(['state', b.agg ? fmtInt(b.n) + ' ranks without a dump' : 'no dump from this rank']);
      return lines;
    }
    var ent = b.ent, sig = sigOf(c, ent), op = enumName(EN.op, sig[0]), dtype = enumName(EN.dtype, sig[1]);
    var what = op + (b.p2p ? ' ' + (op === 'send' ? 'to' : 'from') + ' comm rank ' + sig[3] + ' (#' + ent.p2p + ')' : ' #' + ent.seq);
    lines.push(['call', what + (b.frontier ? ' \u2014 the frontier' : '')]);
    if (b.mismatch) {
      var ref = c.sigs[md.majoritySig];
      lines.push(['mismatch', 'differs from what most ranks called at #' + c.mm + ': ' + enumName(EN.op, ref[0]) + ' ' +
        enumName(EN.dtype, ref[1]) + ' count ' + fmtInt(ref[4]) + (ref[3] >= 0 ? ' root ' + ref[3] : '') + ' ' + enumName(EN.redOp, ref[2])]);
    }
    if (b.agg) {
      var counts = Object.keys(b.counts).map(function (k) { return fmtInt(b.counts[k]) + ' ' + k; }).join(', ');
      lines.push(['ranks', fmtInt(b.n) + ' in this lane: ' + counts]);
      if (Object.keys(b.sigs).length > 1) lines.push(['note', 'the ranks of this lane disagree on the call (' + Object.keys(b.sigs).length + ' variants)']);
    } else {
      lines.push(['state', b.state]);
    }
    lines.push(['dtype', dtype]);
    lines.push(['count', fmtInt(sig[4]) + ' elements (' + fmtBytes(sig[4] * (DTYPE_BYTES[dtype] || 0)) + ')']);
    if (op === 'allReduce' || op === 'reduce' || op === 'reduceScatter') lines.push(['reduction', enumName(EN.redOp, sig[2])]);
    if (b.p2p) lines.push(['peer', 'comm rank ' + sig[3] + peerRank(md, sig[3])]);
    else if (sig[3] >= 0) lines.push(['root', 'comm rank ' + sig[3] + peerRank(md, sig[3])]);
    if (b.agg) {
      lines.push(['first enqueued', preciseRel(b.t0)]);
      lines.push(['last end', preciseRel(b.t1) + (b.counts.completed === b.n ? '' : ' (pending ones run to their dump)')]);
    } else {
      lines.push(['enqueued', preciseRel(ent.enq)]);
      lines.push(['started', ent.start !== null ? preciseRel(ent.start) + ' (' + fmtDur(ent.start - ent.enq) + ' after the enqueue)' : timingName(b.mem.pi) === 'full' ? 'not yet' : 'not measured (' + timingName(b.mem.pi) + ' timing)']);
      lines.push(['ended', ent.end !== null ? preciseRel(ent.end) + ' (took ' + fmtDur(ent.end - (ent.start !== null ? ent.start : ent.enq)) + ')' : 'pending at the dump (' + preciseRel(b.mem.dump) + ')']);
      lines.push(['rank', procLabel(b.mem.pi) + ' \u00b7 comm rank ' + b.mem.cr + ' \u00b7 ' + procWhere(b.mem.pi)]);
    }
    return lines;
  }
  function peerRank(md, cr) {
    for (var i = 0; i < md.members.length; i++) {
      var mem = md.members[i];
      if (mem.cr === cr && mem.pi >= 0) return ' (' + procLabel(mem.pi) + ')';
    }
    return '';
  }

  function laneLines(view, lane) {
    var md = model(view.ci), lines = [];
    if (lane.kind === 'group') {
      lines.push(['ranks', fmtInt(lane.members.length) + ' ranks ' + RS[lane.st].replace('_', ' ') + ' at the frontier']);
      var list = lane.members.slice(0, 24).map(function (m) { return m.pi >= 0 ? procLabel(m.pi) : 'comm rank ' + m.cr; }).join(', ');
      lines.push(['members', list + (lane.members.length > 24 ? ', \u2026' : '')]);
      lines.push(['expand', 'click the label to list them one lane each']);
      return lines;
    }
    var mem = lane.mem;
    if (mem.pi >= 0) {
      var pi = mem.pi;
      lines.push(['process', procLabel(pi) + ' on ' + str(P.host[pi]) + ', pid ' + P.pid[pi] + (P.world[pi] >= 0 ? ', world size ' + P.world[pi] : '')]);
    } else {
      lines.push(['process', 'no dump from this rank']);
    }
    lines.push(['comm rank', mem.cr + ' of ' + md.c.size]);
    lines.push(['at the frontier', RS[mem.st] ? RS[mem.st].replace('_', ' ') : '?']);
    lines.push(['last enqueued / started / completed', [mem.le, mem.ls, mem.lc].map(function (x) { return x < 0 ? '\u2014' : '#' + x; }).join(' / ')]);
    if (mem.ae) lines.push(['async error', 'ncclResult ' + mem.ae]);
    lines.push(['communicator state', str(mem.cs)]);
    var sp = mem.suspect || (mem.rankSuspect && mem.rankSuspect.s);
    if (sp) {
      lines.push(['suspect', sp.reason.replace('_', ' ') + (sp.op ? ' in ' + sp.op + (sp.seq !== null ? ' #' + sp.seq : '') : '')]);
      lines.push(['evidence', sp.evidence]);
    }
    if (mem.pi >= 0) {
      var p = mem.pi;
      lines.push(['timing', timingName(p)]);
      lines.push(['dump', enumName(EN.reason, P.reason[p]) + (str(P.detail[p]) ? ': ' + str(P.detail[p]) : '') + ' at ' + fmtRel(P.dump[p])]);
      if (P.died[p]) lines.push(['process died', 'yes (salvaged ring)']);
      if (P.sim[p]) lines.push(['simulated', 'yes (sim/ stand-in libraries)']);
      lines.push(['ring', fmtInt(P.held[p]) + ' calls held of ' + fmtInt(P.recorded[p]) + ' recorded' + (P.evicted[p] ? ', ' + fmtInt(P.evicted[p]) + ' evicted' : '') + (P.torn[p] ? ', ' + fmtInt(P.torn[p]) + ' torn' : '')]);
      lines.push(['command line', str(P.cmd[p])]);
    }
    return lines;
  }

  function showTooltip(ev, lines) {
    tooltip.textContent = lines.map(function (l) { return l[0] + ': ' + l[1]; }).join('\n');
    tooltip.hidden = false;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var r = tooltip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 8) x = Math.max(8, ev.clientX - r.width - 14);
    if (y + r.height > window.innerHeight - 8) y = Math.max(8, ev.clientY - r.height - 14);
    tooltip.style.left = x + 'px';
    tooltip.style.top = y + 'px';
  }
  function hideTooltip() { tooltip.hidden = true; }

  function showDetails(view, title, lines, kind) {
    var d = view.details;
    clear(d);
    d.hidden = false;
    d.setAttribute('data-kind', kind);
    d.appendChild(h('h4', { text: title }));
    var dl = h('dl');
    lines.forEach(function (l) {
      dl.appendChild(h('dt', { text: l[0] }));
      dl.appendChild(h('dd', null, l[0] === 'command line' || l[0] === 'evidence' ? h('pre', { text: l[1] }) : l[1]));
    });
    d.appendChild(dl);
  }

  // ---------------------------------------------------------------- one communicator's card
  var views = [];
  function fitView(view) {
    var md = model(view.ci);
    if (view.axis === 'seq') {
      view.a = md.seqMin - 0.6; view.b = md.seqMax + 0.6;
    } else {
      var pad = (md.tMax - md.tMin) * 0.02;
      view.a = md.tMin - pad; view.b = md.tMax + pad;
    }
  }
  function frontierView(view) {
    var md = model(view.ci);
    if (md.F < 0) { fitView(view); return; }
    if (view.axis === 'seq') { view.a = md.F - 3.6; view.b = md.F + 3.6; return; }
    var lo = Infinity, hi = -Infinity;
    md.members.forEach(function (mem) {
      mem.entries.forEach(function (ent) {
        if (ent.seq >= md.F - 1 && ent.seq <= md.F) {
          lo = Math.min(lo, ent.enq);
          hi = Math.max(hi, ent.end !== null ? ent.end : ent.start !== null ? ent.start : ent.enq);
        }
      });
    });
    if (!isFinite(lo)) { fitView(view); return; }
    var span = Math.max(hi - lo, 1);
    view.a = lo - span * 0.5; view.b = hi + span * 0.5;
  }

  var scheduled = {};
  function redraw(view) {
    if (scheduled[view.ci]) return;
    scheduled[view.ci] = true;
    requestAnimationFrame(function () { scheduled[view.ci] = false; draw(view); });
  }
  function zoom(view, factor, px) {
    var a = view.a, b = view.b;
    var center = px === undefined ? (a + b) / 2 : a + (px - view.plotX) / view.plotW * (b - a);
    var span = Math.max((b - a) * factor, view.axis === 'seq' ? 1 : 0.01);
    view.a = center - (center - a) * span / (b - a);
    view.b = view.a + span;
    redraw(view);
  }
  function pan(view, dxPixels) {
    var d = dxPixels / view.plotW * (view.b - view.a);
    view.a -= d; view.b -= d;
    redraw(view);
  }

  function openTimeline(card, ci, options) {
    if (card.view) return card.view;
    var body = card.querySelector('.comm-body');
    var md = model(ci);
    var view = { ci: ci, axis: 'time', group: true, expanded: {}, focus: focusFn, card: card };
    var toolbar = h('div', { cls: 'tl-toolbar' });
    function btn(label, title, fn) { return h('button', { type: 'button', title: title, text: label, on: { click: fn } }); }
    toolbar.appendChild(btn('+', 'Zoom in (or Ctrl + wheel)', function () { zoom(view, 0.5); }));
    toolbar.appendChild(btn(MINUS, 'Zoom out (or Ctrl + wheel)', function () { zoom(view, 2); }));
    toolbar.appendChild(btn('\u2190', 'Pan left (or drag, or Shift + wheel)', function () { pan(view, view.plotW / 3); }));
    toolbar.appendChild(btn('\u2192', 'Pan right', function () { pan(view, -view.plotW / 3); }));
    toolbar.appendChild(btn('fit', 'Show the whole window', function () { fitView(view); redraw(view); }));
    if (md.F >= 0) toolbar.appendChild(btn('frontier', 'Zoom to the frontier', function () { frontierView(view); redraw(view); }));
    toolbar.appendChild(h('span', { cls: 'sep' }));
    var axisSel = h('select', { title: 'x axis', 'aria-label': 'x axis' },
      h('option', { value: 'time', text: 'time from the incident' }), h('option', { value: 'seq', text: 'sequence number' }));
    axisSel.addEventListener('change', function () { view.axis = axisSel.value; fitView(view); redraw(view); });
    toolbar.appendChild(axisSel);
    if (md.c.size > GROUP_ABOVE) {
      var grp = h('input', { type: 'checkbox', checked: 'checked' });
      grp.addEventListener('change', function () { view.group = grp.checked; redraw(view); });
      toolbar.appendChild(h('label', null, grp, ' group ranks by state'));
    }
    toolbar.appendChild(h('span', { cls: 'sep' }));
    toolbar.appendChild(h('span', { text: 'drag to pan, Ctrl + wheel to zoom, click a bar or a rank for details' }));
    body.appendChild(toolbar);
    var box = h('div', { cls: 'tl' });
    var svg = s('svg', { 'class': 'timeline', role: 'img', 'aria-label': 'timeline of ' + (md.c.name || md.c.id) });
    box.appendChild(svg);
    body.appendChild(box);
    var details = h('div', { cls: 'details', hidden: 'hidden' });
    body.appendChild(details);
    view.svg = svg; view.box = box; view.details = details;
    card.view = view;
    views.push(view);
    if (md.F >= 0 && md.c.stalled) frontierView(view); else fitView(view);
    if (options && options.fit) fitView(view);

    svg.addEventListener('mousemove', function (ev) {
      if (view.drag) return;
      var t = ev.target, hit = barAt(view, t);
      if (hit && hit.bar) { showTooltip(ev, entryLines(view, hit.lane, hit.bar)); return; }
      var li = t.getAttribute && t.getAttribute('data-label');
      if (li !== null && li !== undefined) { showTooltip(ev, laneLines(view, view.lanes[+li])); return; }
      hideTooltip();
    });
    svg.addEventListener('mouseleave', hideTooltip);
    svg.addEventListener('click', function (ev) {
      if (view.dragged) { view.dragged = false; return; }
      var t = ev.target;
      var more = t.closest && t.closest('[data-more]');
      if (more) {
        var key = more.getAttribute('data-more');
        view.expanded[key] = (view.expanded[key] || 0) + MEMBERS_PER_PAGE;
        redraw(view);
        return;
      }
      var hit = barAt(view, t);
      if (hit && hit.bar) {
        view.selected = { lane: hit.li, bar: hit.bi };
        var b = hit.bar, title;
        if (b.never) title = 'never issued: ' + (model(ci).c.frOp || 'collective') + ' #' + b.seq;
        else if (b.missingBar) title = 'no dump';
        else title = b.ent.op + (b.p2p ? '' : ' #' + b.seq) + (hit.lane.kind === 'group' ? ' \u2014 ' + hit.lane.label : ' \u2014 ' + hit.lane.label);
        showDetails(view, title, entryLines(view, hit.lane, b), 'entry');
        redraw(view);
        return;
      }
      var li = t.getAttribute && t.getAttribute('data-label');
      if (li !== null && li !== undefined) {
        var lane = view.lanes[+li];
        if (lane.kind === 'group') {
          view.expanded[lane.key] = view.expanded[lane.key] ? 0 : MEMBERS_PER_PAGE;
          redraw(view);
        }
        showDetails(view, lane.label, laneLines(view, lane), lane.kind === 'group' ? 'group' : 'rank');
      }
    });
    // Pan by dragging, zoom with Ctrl (or pinch) + wheel, pan with Shift + wheel or a sideways wheel.
    svg.addEventListener('mousedown', function (ev) {
      if (ev.button !== 0) return;
      view.drag = { x: ev.clientX, a: view.a, b: view.b };
      view.dragged = false;
    });
    window.addEventListener('mousemove', function (ev) {
      if (!view.drag) return;
      var dx = ev.clientX - view.drag.x;
      if (Math.abs(dx) > 3) { view.dragged = true; svg.classList.add('panning'); hideTooltip(); }
      if (!view.dragged) return;
      var d = dx / view.plotW * (view.drag.b - view.drag.a);
      view.a = view.drag.a - d; view.b = view.drag.b - d;
      redraw(view);
    });
    window.addEventListener('mouseup', function () { if (view.drag) { view.drag = null; svg.classList.remove('panning'); } });
    svg.addEventListener('wheel', function (ev) {
      var rect = svg.getBoundingClientRect();
      if (ev.ctrlKey || ev.metaKey) {
        ev.preventDefault();
        zoom(view, Math.pow(1.0015, ev.deltaY), ev.clientX - rect.left);
      } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
        ev.preventDefault();
        pan(view, -(ev.shiftKey ? ev.deltaY : ev.deltaX));
      }
    }, { passive: false });
    svg.addEventListener('dblclick', function (ev) {
      var rect = svg.getBoundingClientRect();
      zoom(view, ev.shiftKey ? 2 : 0.5, ev.clientX - rect.left);
    });
    draw(view);
    return view;
  }

  function stateCounts(ci) {
    var c = D.comms[ci], m = c.m, counts = {};
    for (var i = 0; i + 8 < m.length; i += 9) { var n = RS[m[i + 2]] || '?'; counts[n] = (counts[n] || 0) + 1; }
    return Object.keys(counts).sort(function (x, y) { return RS_ORDER[x] - RS_ORDER[y]; })
      .map(function (k) { return fmtInt(counts[k]) + ' ' + k.replace('_', ' '); }).join(', ');
  }

  function commCard(ci) {
    var c = D.comms[ci];
    var hasSuspect = (V.suspects || []).some(function (sp) { return sp.comm === c.id; });
    var card = h('div', { cls: 'comm' + (hasSuspect ? ' has-suspect' : ''), id: 'comm-' + ci, 'data-comm-id': c.id });
    var head = h('div', { cls: 'comm-head', role: 'button', tabindex: '0', 'aria-expanded': 'false' });
    var twisty = h('span', { cls: 'twisty', text: '\u25b8' });
    head.appendChild(twisty);
    head.appendChild(h('span', { cls: 'cname', text: c.name ? c.name : 'communicator' }));
    head.appendChild(h('span', { cls: 'mono', text: c.id }));
    head.appendChild(h('span', { cls: 'csize', text: plural(c.size, 'rank') }));
    if (c.stalled) head.appendChild(h('span', { cls: 'badge stalled', text: 'stalled' }));
    else head.appendChild(h('span', { cls: 'badge healthy', text: 'not stalled' }));
    if (c.fr >= 0) head.appendChild(h('span', { cls: 'badge frontier', 'data-frontier': c.fr, text: 'frontier #' + c.fr + (c.frOp ? ' ' + c.frOp : '') }));
    if (c.mm >= 0) head.appendChild(h('span', { cls: 'badge mismatch', text: 'mismatch at #' + c.mm }));
    if (hasSuspect) head.appendChild(h('span', { cls: 'reason', text: 'suspect inside' }));
    head.appendChild(h('span', { cls: 'csum', text: c.stalled && c.sum ? c.sum : (c.sum ? c.sum + ' \u2014 ' : '') + stateCounts(ci) }));
    card.appendChild(head);
    var body = h('div', { cls: 'comm-body', hidden: 'hidden' });
    card.appendChild(body);
    function toggle(open) {
      var isOpen = !body.hidden;
      if (open === undefined) open = !isOpen;
      body.hidden = !open;
      twisty.textContent = open ? '\u25be' : '\u25b8';
      head.setAttribute('aria-expanded', open ? 'true' : 'false');
      if (open) { if (!card.view) openTimeline(card, ci); else redraw(card.view); }
    }
    head.addEventListener('click', function () { toggle(); });
    head.addEventListener('keydown', function (ev) { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); toggle(); } });
    card.toggle = toggle;
    return card;
  }

  // ---------------------------------------------------------------- filters and the list
  var listEl = document.getElementById('comm-list');
  var order = D.comms.map(function (c, i) { return i; });
  var suspectOrder = {};
  (V.suspects || []).forEach(function (sp, k) {
    var ci = commIndexById[sp.comm];
    if (ci !== undefined && !(ci in suspectOrder)) suspectOrder[ci] = k;
    (sp.chain || []).forEach(function (l) {
      var cj = commIndexById[l.comm];
      if (cj !== undefined && !(cj in suspectOrder)) suspectOrder[cj] = k + 0.5;
    });
  });
  order.sort(function (x, y) {
    var sx = x in suspectOrder ? suspectOrder[x] : Infinity, sy = y in suspectOrder ? suspectOrder[y] : Infinity;
    if (sx !== sy) return sx < sy ? -1 : 1;
    var cx = D.comms[x], cy = D.comms[y];
    if (cx.stalled !== cy.stalled) return cx.stalled ? -1 : 1;
    if ((cx.mm >= 0) !== (cy.mm >= 0)) return cx.mm >= 0 ? -1 : 1;
    return x - y;
  });

  var filter = { comm: '', rank: null, host: '', stalledOnly: false };
  var focusFn = null;
  var cards = {};
  var shownCount = 0, matching = [];

  // Which communicators each process belongs to, built on the first rank filter.
  var commsOfProc = null;
  function procComms() {
    if (commsOfProc) return commsOfProc;
    commsOfProc = {};
    D.comms.forEach(function (c, ci) {
      for (var i = 0; i + 8 < c.m.length; i += 9) {
        var pi = c.m[i + 1];
        if (pi >= 0) (commsOfProc[pi] = commsOfProc[pi] || []).push(ci);
      }
    });
    return commsOfProc;
  }
  function parseRanks(text) {
    var m = /^\s*(\d+)\s*(?:-\s*(\d+))?\s*$/.exec(text);
    if (!m) return null;
    var a = +m[1], b = m[2] !== undefined ? +m[2] : a;
    return b >= a ? [a, b] : null;
  }

  function applyFilters() {
    var wanted = null;
    focusFn = null;
    var rankText = filter.rankText || '';
    if (rankText) {
      var range = parseRanks(rankText), procs = [];
      for (var pi = 0; pi < P.rank.length; pi++) {
        if (range ? (P.rank[pi] >= range[0] && P.rank[pi] <= range[1]) : str(P.host[pi]).toLowerCase().indexOf(rankText.toLowerCase()) >= 0) procs.push(pi);
      }
      var set = {};
      procs.forEach(function (p) { set[p] = true; });
      focusFn = function (mem) { return mem.pi >= 0 && set[mem.pi] === true; };
      wanted = {};
      var pc = procComms();
      procs.forEach(function (p) { (pc[p] || []).forEach(function (ci) { wanted[ci] = true; }); });
    }
    var q = filter.comm.toLowerCase();
    matching = order.filter(function (ci) {
      var c = D.comms[ci];
      if (filter.stalledOnly && !c.stalled) return false;
      if (wanted && !wanted[ci]) return false;
      if (q && c.id.toLowerCase().indexOf(q) < 0 && (c.name || '').toLowerCase().indexOf(q) < 0) return false;
      return true;
    });
    views.forEach(function (v) { v.focus = focusFn; });
    clear(listEl);
    shownCount = 0;
    showMore(true);
  }

  function showMore(first) {
    var end = Math.min(matching.length, shownCount + COMMS_PER_PAGE);
    var moreBtn = listEl.querySelector('.more-comms');
    if (moreBtn) moreBtn.remove();
    for (var k = shownCount; k < end; k++) {
      var ci = matching[k];
      var card = cards[ci] || (cards[ci] = commCard(ci));
      listEl.appendChild(card);
      if (card.view) { card.view.focus = focusFn; if (!card.querySelector('.comm-body').hidden) redraw(card.view); }
    }
    shownCount = end;
    if (matching.length === 0) listEl.appendChild(h('p', { cls: 'note', text: 'No communicator matches the filter.' }));
    if (shownCount < matching.length) {
      listEl.appendChild(h('div', { cls: 'more-comms' },
        h('button', { type: 'button', text: 'show ' + Math.min(COMMS_PER_PAGE, matching.length - shownCount) + ' more communicators (' + fmtInt(matching.length - shownCount) + ' not shown)', on: { click: function () { showMore(false); } } })));
    }
    var countEl = document.getElementById('match-count');
    if (countEl) countEl.textContent = fmtInt(matching.length) + ' of ' + plural(D.comms.length, 'communicator');
    return first;
  }

  function buildControls() {
    var ctl = document.getElementById('controls');
    var commInput = h('input', { type: 'search', placeholder: 'name or id', 'aria-label': 'filter communicators' });
    var rankInput = h('input', { type: 'search', placeholder: 'rank, range (0-7) or host', 'aria-label': 'filter ranks', id: 'rank-filter' });
    var stalled = h('input', { type: 'checkbox' });
    var timer = null;
    function later() { clearTimeout(timer); timer = setTimeout(function () {
      filter.comm = commInput.value.trim(); filter.rankText = rankInput.value.trim(); filter.stalledOnly = stalled.checked; applyFilters();
    }, 150); }
    commInput.addEventListener('input', later);
    rankInput.addEventListener('input', later);
    stalled.addEventListener('change', later);
    ctl.appendChild(h('label', null, 'Communicator', commInput));
    ctl.appendChild(h('label', null, 'Rank', rankInput));
    ctl.appendChild(h('label', null, stalled, 'stalled only'));
    ctl.appendChild(h('span', { id: 'match-count', cls: 'note' }));
    var legend = h('span', { cls: 'legend' });
    [['completed', 'var(--completed)'], ['started', 'var(--started)'], ['scheduled', 'var(--scheduled)'], ['error', 'var(--error)'], ['unknown (hostOnly timing)', 'var(--unknown)']].forEach(function (x) {
      legend.appendChild(h('span', null, h('i', { cls: 'swatch', style: 'background:' + x[1] }), x[0]));
    });
    legend.appendChild(h('span', null, h('i', { cls: 'swatch', style: 'border:1.5px dashed var(--never)' }), 'never issued'));
    legend.appendChild(h('span', null, h('i', { cls: 'swatch', style: 'border:2px solid var(--frontier)' }), 'frontier call'));
    legend.appendChild(h('span', null, h('i', { cls: 'swatch', style: 'background:#fdecea;border-left:3px solid var(--suspect)' }), 'suspect rank'));
    ctl.appendChild(legend);
  }

  // Opens a communicator's card and brings one rank's lane into view.
  function focusRank(ci, pi) {
    var pos = matching.indexOf(ci);
    if (pos < 0) { filter.comm = ''; filter.rankText = ''; filter.stalledOnly = false; applyFilters(); pos = matching.indexOf(ci); }
    while (pos >= shownCount && shownCount < matching.length) showMore(false);
    var card = cards[ci];
    if (!card) return;
    card.toggle(true);
    card.scrollIntoView({ block: 'start' });
    if (pi >= 0 && card.view) {
      var lane = card.view.svg.querySelector('.lane[data-rank="' + P.rank[pi] + '"]');
      if (lane) lane.scrollIntoView({ block: 'center' });
    }
  }

  // ---------------------------------------------------------------- the verdict
  function rankOf(ref) { return ref.label || (ref.rank !== null ? 'rank ' + ref.rank : ref.host + ':' + ref.pid); }
  function procOfRef(ref) {
    for (var pi = 0; pi < P.rank.length; pi++) {
      if (P.pid[pi] === ref.pid && str(P.host[pi]) === ref.host) return pi;
    }
    return -1;
  }
  function commLabel(id) {
    var ci = commIndexById[id];
    if (ci === undefined) return id;
    var c = D.comms[ci];
    return (c.name ? c.name + ' ' : '') + id;
  }

  function buildVerdict() {
    var el = document.getElementById('verdict');
    var status = String(V.status || '?');
    el.appendChild(h('div', { cls: 'verdict-head' },
      h('span', { cls: 'status status-' + status, id: 'status', text: status.toUpperCase() }),
      h('span', { cls: 'summary', id: 'summary', text: V.summary })));
    var ctx = [];
    ctx.push('job ' + (V.job || '(no job id)'));
    if (V.incident) ctx.push('incident ' + V.incident);
    var r = V.ranks || {};
    // As `ncclfr analyze` says it: "16 of 16 ranks have a dump", or "3 processes with a dump".
    var found = r.found || 0, expected = r.expected;
    if (expected !== null && expected !== undefined && found <= expected) {
      ctx.push(fmtInt(found) + ' of ' + plural(expected, 'rank') + (found === 1 ? ' has' : ' have') + ' a dump');
    } else {
      ctx.push(plural(found, 'process', 'processes') + ' with a dump' +
        (expected !== null && expected !== undefined ? ' (the dumps say the job has ' + plural(expected, 'rank') + ')' : ''));
    }
    if (D.t0Iso) ctx.push('times are relative to ' + (D.t0Source === 'incident' ? 'the incident\'s first detection, ' : 'the latest dump, ') + D.t0Iso);
    document.getElementById('context').textContent = ctx.join(' \u00b7 ');
    var title = document.getElementById('title');
    title.textContent = 'ncclfr report \u2014 ' + (V.job || '(no job id)');

    var sus = V.suspects || [];
    if (sus.length) {
      el.appendChild(h('h2', { text: 'Suspects, most likely first' }));
      var table = h('table', { cls: 'suspects', id: 'suspects' });
      table.appendChild(h('thead', null, h('tr', null, ['#', 'rank', 'host : pid', 'reason', 'where', 'evidence', 'holds up', ''].map(function (t) { return h('th', { text: t }); }))));
      var tbody = h('tbody');
      var limit = 20;
      sus.forEach(function (sp, i) {
        var row = h('tr', { 'data-suspect-rank': sp.rank !== null ? sp.rank : '' });
        if (i >= limit) row.hidden = true;
        row.appendChild(h('td', { text: String(i + 1) }));
        row.appendChild(h('td', null, h('strong', { text: rankOf(sp) })));
        row.appendChild(h('td', { cls: 'mono', text: sp.host ? sp.host + ':' + sp.pid : '\u2014' }));
        row.appendChild(h('td', null, h('span', { cls: 'reason', text: sp.reason.replace('_', ' ') })));
        var where = '';
        if (sp.op) where += sp.op + (sp.seq !== null ? ' #' + sp.seq : '');
        if (sp.op && sp.peer) where += (sp.op === 'send' ? ' to ' : sp.op === 'recv' ? ' from ' : ' with ') + rankOf(sp.peer);
        if (sp.comm) where += (where ? ' on ' : '') + commLabel(sp.comm) + (sp.comm_rank !== null ? ' (comm rank ' + sp.comm_rank + ')' : '');
        row.appendChild(h('td', { text: where || '\u2014' }));
        var ev = h('td', { cls: 'evidence' }, h('div', { text: sp.evidence }));
        if (sp.with && sp.with.length) ev.appendChild(h('div', { cls: 'note', text: 'together with ' + sp.with.map(rankOf).join(', ') }));
        if (sp.chain && sp.chain.length) {
          var ol = h('ol', { cls: 'chain' });
          sp.chain.forEach(function (l) {
            ol.appendChild(h('li', { text: rankOf(l) + ' on ' + commLabel(l.comm) + ' (' + String(l.state).replace('_', ' ') + ')' + (l.why ? ': ' + l.why : '') }));
          });
          ev.appendChild(h('div', { cls: 'note', text: 'how the job waits on it (cross-communicator chain):' }));
          ev.appendChild(ol);
        }
        row.appendChild(ev);
        // "holds up": as `ncclfr analyze` counts it, one call per rank and communicator.
        row.appendChild(h('td', { text: !sp.blocking ? '\u2014' : sp.blocking === 1 ? '1 call another rank waits in'
          : fmtInt(sp.blocking) + ' calls other ranks wait in' }));
        var ci = commIndexById[sp.comm];
        row.appendChild(h('td', null, ci === undefined ? null : h('button', { type: 'button', cls: 'link', text: 'show on timeline',
          on: { click: function () { focusRank(ci, procOfRef(sp)); } } })));
        tbody.appendChild(row);
      });
      table.appendChild(tbody);
      el.appendChild(table);
      if (sus.length > limit) {
        el.appendChild(h('button', { type: 'button', text: 'show all ' + fmtInt(sus.length) + ' suspects', on: { click: function (ev) {
          tbody.querySelectorAll('tr').forEach(function (tr) { tr.hidden = false; }); ev.target.remove(); } } }));
      }
      if (V.left_out && V.left_out.suspects) el.appendChild(h('p', { cls: 'note', text: fmtInt(V.left_out.suspects) + ' more suspects are not in this report (ncclfr analyze --json lists all).' }));
    } else if (status === 'ok') {
      // The summary above says how much is known (with NCCLFR_TIMING=host, issued and matched, not
      // completed): no claim of completion here.
      el.appendChild(h('p', { text: 'No rank holds the job up.' }));
    }

    function listSection(title, items, render, leftOut) {
      if (!items || !items.length) return;
      var d = h('details', { cls: 'more' }, h('summary', { text: title + ' (' + fmtInt(items.length + (leftOut || 0)) + ')' }));
      var ul = h('ul', { cls: 'plain' });
      items.forEach(function (x) { ul.appendChild(h('li', { text: render(x) })); });
      if (leftOut) ul.appendChild(h('li', { cls: 'note', text: fmtInt(leftOut) + ' more not listed' }));
      d.appendChild(ul);
      el.appendChild(d);
    }
    var lo = V.left_out || {};
    listSection('Ranks without a dump', r.missing, rankOf, lo.missing);
    listSection('Ranks that died', r.died, function (x) { return rankOf(x) + (x.host ? ' (' + x.host + ':' + x.pid + ')' : ''); }, lo.died);
    listSection('Unreadable dumps', r.unreadable, function (x) { return x.error; }, lo.unreadable);
    listSection('Point-to-point calls without counterpart', V.p2p_unmatched, function (x) {
      return commLabel(x.comm) + ': ' + rankOf(x.src) + ' \u2192 ' + rankOf(x.dst) + ': ' + plural(x.sends, 'send') + ', ' + plural(x.receives, 'receive');
    }, lo.p2p);
    listSection('Notes', V.notes, function (x) { return x; }, lo.notes);
    if (D.otherIncidents && D.otherIncidents.length) {
      listSection('Other incidents of this job (not shown; ncclfr report --incident)', D.otherIncidents, function (x) { return x; }, 0);
    }
  }

  function buildWindowNote() {
    var w = D.window, el = document.getElementById('window-note');
    var text = 'Each timeline shows a window, not every call: for every rank, the collectives from ' + w.before +
      ' before to ' + w.after + ' after its communicator\'s frontier (the first call not completed everywhere; the newest call where there is none)' +
      (w.maxP2P ? ', and up to ' + w.maxP2P + ' sends and receives among them' : '') + '. That is ' + fmtInt(w.entries) +
      ' of the ' + fmtInt(w.held) + ' calls the dumps hold (their rings recorded ' + fmtInt(w.recorded) + '). ' +
      (w.shrunk ? 'The window was narrowed to keep this file small. ' : '') +
      'ncclfr export --format chrome-trace has every call.';
    el.textContent = text;
  }

  function buildFooter() {
    var f = document.getElementById('footer');
    var parts = [D.tool + ' report'];
    if (D.t0Iso) parts.push('t = 0 is ' + D.t0Iso + ' (' + (D.t0Source === 'incident' ? 'the incident was first detected' : 'the latest dump') + ')');
    parts.push('times from different hosts are aligned through each dump\'s clock base');
    var sim = false;
    for (var i = 0; i < P.sim.length; i++) if (P.sim[i]) { sim = true; break; }
    if (sim) parts.push('recorded on sim/ (stand-in CUDA and NCCL libraries)');
    f.textContent = parts.join(' \u00b7 ');
  }

  function hatchDefs() {
    var svg = s('svg', { width: 0, height: 0, style: 'position:absolute', 'aria-hidden': 'true' });
    var defs = s('defs');
    [['hatch', '#b71c1c', '#fdecea'], ['hatch-grey', '#9e9e9e', '#f2f2f2']].forEach(function (x) {
      var p = s('pattern', { id: x[0], width: 6, height: 6, patternUnits: 'userSpaceOnUse', patternTransform: 'rotate(45)' });
      p.appendChild(s('rect', { width: 6, height: 6, fill: x[2] }));
      p.appendChild(s('line', { x1: 0, y1: 0, x2: 0, y2: 6, stroke: x[1], 'stroke-width': 2 }));
      defs.appendChild(p);
    });
    svg.appendChild(defs);
    document.body.appendChild(svg);
  }

  // ---------------------------------------------------------------- start
  hatchDefs();
  buildVerdict();
  buildControls();
  buildWindowNote();
  buildFooter();
  applyFilters();
  // Draw the timelines that matter most right away: the suspects' communicators, then stalled ones.
  var opened = 0;
  for (var k = 0; k < matching.length && opened < OPEN_AT_START; k++) {
    var ci = matching[k];
    var interesting = D.comms[ci].stalled || ci in suspectOrder;
    if (!interesting && opened > 0) break;
    // Nothing stalled: show the first communicator that has calls to show.
    if (!interesting && D.comms[ci].e.length === 0) continue;
    if (k >= shownCount) break;
    cards[ci].toggle(true);
    opened++;
  }
  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () { views.forEach(function (v) { if (!v.card.querySelector('.comm-body').hidden) redraw(v); }); }, 100);
  });
  window.ncclfrReport = { readyMs: performance.now(), comms: D.comms.length, focusRank: focusRank };
  document.documentElement.setAttribute('data-ready', '1');
})();
