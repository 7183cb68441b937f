#include "ncclfr/viewer/chrome_trace.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>
#include <tuple>

#include "ncclfr/analysis/render.h"
#include "ncclfr/dump_file.h"
#include "ncclfr/version.h"
#include "ncclfr/viewer/clock.h"
#include "ncclfr/viewer/dump_window.h"
#include "ncclfr/viewer/json_text.h"

namespace ncclfr::viewer {

using analysis::Job;
using analysis::Problem;
using analysis::ProcessDump;
using analysis::Verdict;

namespace {

namespace fs = std::filesystem;

// A process's id in the trace: its global rank, so Perfetto and chrome://tracing list ranks in
// order; processes the launcher gave no rank get ids above any rank.
int64_t tracePid(const ProcessDump& p, size_t index) {
  return p.globalRank >= 0 ? p.globalRank : 100'000'000 + static_cast<int64_t>(index);
}

size_t dtypeBytes(schema::DataType t) {
  switch (t) {
    case schema::DataType::INT8:
    case schema::DataType::UINT8:
    case schema::DataType::FLOAT8E4M3:
    case schema::DataType::FLOAT8E5M2: return 1;
    case schema::DataType::FLOAT16:
    case schema::DataType::BFLOAT16: return 2;
    case schema::DataType::INT32:
    case schema::DataType::UINT32:
    case schema::DataType::FLOAT32: return 4;
    case schema::DataType::INT64:
    case schema::DataType::UINT64:
    case schema::DataType::FLOAT64: return 8;
  }
  return 0;
}

// Trace Event Format times are microseconds; three decimals keep nanoseconds.
void appendMicros(std::string* out, int64_t ns) {
  char buf[40];
  if (ns < 0) ns = 0;
  std::snprintf(buf, sizeof buf, "%" PRId64 ".%03" PRId64, ns / 1000, ns % 1000);
  out->append(buf);
}

void appendInt(std::string* out, int64_t v) { out->append(std::to_string(v)); }

void appendKey(std::string* out, const char* key) {
  out->push_back('"');
  out->append(key);
  out->append("\":");
}

struct Selected {
  size_t index = 0;  // into job.processes
  int64_t pid = 0;
};

// What the trace says about the job as a whole, HTA-style: HTA's TraceAnalysis reads
// distributedInfo.rank from every file (and world_size, backend) to line ranks up.
struct JobInfo {
  int64_t baseNs = 0;        // wall ns that ts 0 stands for
  int64_t incidentWallNs = 0;
  int32_t worldSize = -1;
  int32_t ncclVersion = 0;
  std::map<size_t, std::vector<std::string>> labels;  // process index -> labels (suspect, died)
};

std::string ncclVersionText(int32_t code) {
  if (code <= 0) return "";
  // NCCL_VERSION_CODE is major*10000 + minor*100 + patch since 2.9.
  return std::to_string(code / 10000) + "." + std::to_string((code % 10000) / 100) + "." +
         std::to_string(code % 100);
}

// The communicators a set of processes belongs to, as pg_config entries (bounded: a 24,576-rank
// job has thousands of communicators, and a list of every member of the world communicator would
// dwarf the rest of a per-rank file).
std::string pgConfig(const Verdict* verdict, const std::set<uint64_t>* onlyIds, size_t* count) {
  constexpr size_t kMaxGroups = 256;
  constexpr size_t kMaxRanksListed = 4096;
  std::string out = "[";
  size_t n = 0;
  *count = 0;
  if (!verdict) return "[]";
  for (const auto& c : verdict->comms) {
    if (onlyIds && !onlyIds->count(c.id)) continue;
    ++*count;
    if (n == kMaxGroups) continue;
    if (n++) out.push_back(',');
    out += "{\"pg_name\":";
    appendJsonString(&out, analysis::hexId(c.id));
    out += ",\"pg_desc\":";
    appendJsonString(&out, truncateUtf8(c.name, 256));
    out += ",\"backend_config\":\"cuda:nccl\",\"pg_size\":";
    appendInt(&out, c.size);
    if (c.ranks.size() == static_cast<size_t>(c.size) && c.ranks.size() <= kMaxRanksListed) {
      out += ",\"ranks\":[";
      for (size_t k = 0; k < c.ranks.size(); ++k) {
        if (k) out.push_back(',');
        appendInt(&out, c.ranks[k].who.rank);
      }
      out += "]";
    }
    out += "}";
  }
  out += "]";
  return out;
}

void appendMetadata(std::string* out, const char* name, int64_t pid, int64_t tid, const char* argKey,
                    const std::string& argJson) {
  out->append(",\n{\"ph\":\"M\",\"name\":\"");
  out->append(name);
  out->append("\",\"pid\":");
  appendInt(out, pid);
  if (tid >= 0) {
    out->append(",\"tid\":");
    appendInt(out, tid);
  }
  out->append(",\"args\":{\"");
  out->append(argKey);
  out->append("\":");
  out->append(argJson);
  out->append("}}");
}

// One process's events: metadata, then one complete event per recorded call. Returns false with
// *error when its dump cannot be read again.
bool renderProcess(const ProcessDump& p, size_t index, int64_t pid, const JobInfo& info,
                   const TraceOptions& options, std::string* out, size_t* events, std::string* error) {
  std::vector<FullEntry> entries;
  DumpExtras extras;
  if (p.paths.empty() || !readAllEntries(p.paths[0], options.last, &entries, &extras, error)) return false;

  std::string name = "rank " + (p.globalRank >= 0 ? std::to_string(p.globalRank) : std::string("?")) + " (" +
                     truncateUtf8(p.host, 256) + ":" + std::to_string(p.pid) + ")";
  appendMetadata(out, "process_name", pid, -1, "name", jsonString(name));
  appendMetadata(out, "process_sort_index", pid, -1, "sort_index", std::to_string(pid));
  auto lab = info.labels.find(index);
  if (lab != info.labels.end()) {
    std::string labels;
    for (const auto& l : lab->second) labels += (labels.empty() ? "" : ", ") + l;
    appendMetadata(out, "process_labels", pid, -1, "labels", jsonString(labels));
  }

  // One thread per (communicator, stream): a stream runs its calls in order, so its calls follow
  // one another on the track. Calls still queued behind them at the dump (enqueued, never started)
  // get a second track, "queued", where they run from their enqueue to the dump.
  const int64_t dumpWall = p.dumpMonoNs != 0 ? wallOf(p, p.dumpMonoNs) : p.dumpWallNs;
  auto isQueued = [&](const FullEntry& e) {
    if (!p.completionKnown() || e.endMonoNs != 0 || e.startMonoNs != 0 || e.state != schema::EntryState::SCHEDULED) {
      return false;
    }
    // Collectives the counters say started are not waiting (see the state fix-up below).
    return e.isP2P() || e.comm >= p.comms.size() || e.seq > p.comms[e.comm].lastStartedSeq;
  };
  std::map<std::tuple<uint32_t, uint64_t, bool>, int64_t> tids;
  std::map<std::pair<uint32_t, uint64_t>, int64_t> streamOrdinal;
  for (const auto& e : entries) {
    if (e.comm >= p.comms.size()) continue;
    bool queued = isQueued(e);
    auto key = std::make_tuple(e.comm, e.stream, queued);
    if (tids.count(key)) continue;
    int64_t tid = static_cast<int64_t>(tids.size()) + 1;
    tids.emplace(key, tid);
    const auto& c = p.comms[e.comm];
    std::string tname = (c.name.empty() ? std::string("comm") : truncateUtf8(c.name, 128)) + " " +
                        analysis::hexId(c.id) + " rank " + std::to_string(c.rank) + "/" + std::to_string(c.size);
    char sbuf[40];
    std::snprintf(sbuf, sizeof sbuf, " stream 0x%" PRIx64, e.stream);
    tname += sbuf;
    if (queued) tname += " (queued)";
    auto [so, fresh] = streamOrdinal.emplace(std::make_pair(e.comm, e.stream), 0);
    if (fresh) so->second = static_cast<int64_t>(streamOrdinal.size());
    int64_t sortIndex = static_cast<int64_t>(e.comm) * 65536 + so->second * 2 + (queued ? 1 : 0);
    appendMetadata(out, "thread_name", pid, tid, "name", jsonString(tname));
    // By communicator, then stream, each stream's queue right below it.
    appendMetadata(out, "thread_sort_index", pid, tid, "sort_index", std::to_string(sortIndex));
  }

  struct Track {
    int64_t lastTs = 0;
    std::vector<int64_t> open;  // ends of the slices that enclose the next one
  };
  std::map<int64_t, Track> tracks;
  for (const auto& e : entries) {
    if (e.comm >= p.comms.size()) continue;
    const auto& c = p.comms[e.comm];
    int64_t tid = tids[{e.comm, e.stream, isQueued(e)}];
    // A call's slice: on the GPU from start to end when measured; pending calls run to the dump.
    int64_t enq = e.enqueueMonoNs != 0 ? wallOf(p, e.enqueueMonoNs) : 0;
    int64_t start = e.startMonoNs != 0 ? wallOf(p, e.startMonoNs) : enq;
    if (start == 0) continue;  // no time at all: nothing to place
    int64_t end = 0;
    const char* note = nullptr;
    bool pending = false;
    // The communicator's counters are exact even where the entry's own state was not updated
    // before the dump (its GPU event not polled yet): a collective at or below them got that far.
    schema::EntryState state = e.state;
    bool byCounters = false;
    if (!e.isP2P() && (state == schema::EntryState::SCHEDULED || state == schema::EntryState::STARTED)) {
      if (e.seq <= c.lastCompletedSeq) {
        state = schema::EntryState::COMPLETED;
        byCounters = true;
      } else if (state == schema::EntryState::SCHEDULED && e.seq <= c.lastStartedSeq) {
        state = schema::EntryState::STARTED;
        byCounters = true;
      }
    }
    if (e.endMonoNs != 0) {
      end = wallOf(p, e.endMonoNs);
    } else if (!p.completionKnown()) {
      end = satAdd(start, e.callDurationNs);
      note = "hostOnly timing: the slice is the host call; GPU completion was not measured";
    } else if (state == schema::EntryState::COMPLETED || state == schema::EntryState::CAPTURED ||
               state == schema::EntryState::ERROR) {
      end = satAdd(start, e.callDurationNs);
      if (byCounters) note = "completed by the communicator's counters; its GPU times were not recorded";
    } else {
      end = std::max(dumpWall, start);
      pending = true;
    }
    int64_t ts = satSub(start, info.baseNs);
    int64_t te = satSub(std::max(end, start), info.baseNs);
    // Viewers need the slices of one track in time order and properly nested (Perfetto drops a
    // slice that overlaps its parent's end). Real streams give that; damaged or odd clocks might
    // not, so a slice is moved to its predecessor's start or cut at its parent's end, and says so.
    bool shifted = false;
    Track& tr = tracks[tid];
    if (ts < tr.lastTs) {
      ts = tr.lastTs;
      shifted = true;
    }
    te = std::max(te, ts);
    while (!tr.open.empty() && tr.open.back() <= ts) tr.open.pop_back();
    if (!tr.open.empty() && te > tr.open.back()) {
      te = tr.open.back();
      shifted = true;
    }
    tr.open.push_back(te);
    tr.lastTs = ts;

    bool p2p = e.isP2P();
    std::string opName = enumName(e.op);
    std::string n = opName;
    if (p2p) {
      n += (e.op == schema::Op::SEND ? " to " : " from ") + std::to_string(e.root);
    } else {
      n += " #" + std::to_string(e.seq);
    }
    out->append(",\n{\"ph\":\"X\",\"name\":");
    appendJsonString(out, n);
    out->append(p2p ? ",\"cat\":\"nccl,p2p\"" : ",\"cat\":\"nccl,collective\"");
    out->append(",\"pid\":");
    appendInt(out, pid);
    out->append(",\"tid\":");
    appendInt(out, tid);
    out->append(",\"ts\":");
    appendMicros(out, ts);
    out->append(",\"dur\":");
    appendMicros(out, te - ts);
    out->append(",\"args\":{");
    appendKey(out, "op");
    appendJsonString(out, opName);
    out->append(",");
    appendKey(out, "state");
    appendJsonString(out, pending ? enumName(state) + " (pending at the dump)" : enumName(state));
    out->append(",");
    appendKey(out, "comm");
    appendJsonString(out, analysis::hexId(c.id));
    if (!c.name.empty()) {
      out->append(",");
      appendKey(out, "comm_name");
      appendJsonString(out, truncateUtf8(c.name, 256));
    }
    out->append(",");
    appendKey(out, "comm_rank");
    appendInt(out, c.rank);
    out->append(",");
    appendKey(out, "comm_size");
    appendInt(out, c.size);
    out->append(",");
    appendKey(out, "seq");
    appendInt(out, e.seq);
    if (p2p) {
      out->append(",");
      appendKey(out, "p2p_seq");
      appendInt(out, e.p2pSeq);
      out->append(",");
      appendKey(out, "peer");
      appendInt(out, e.root);
    } else {
      out->append(",");
      appendKey(out, "op_seq");
      appendInt(out, e.opSeq);
      if (e.root >= 0) {
        out->append(",");
        appendKey(out, "root");
        appendInt(out, e.root);
      }
      out->append(",");
      appendKey(out, "red_op");
      appendJsonString(out, enumName(e.redOp));
    }
    out->append(",");
    appendKey(out, "dtype");
    appendJsonString(out, enumName(e.dtype));
    out->append(",");
    appendKey(out, "count");
    appendInt(out, static_cast<int64_t>(e.count));
    out->append(",");
    appendKey(out, "bytes");
    appendInt(out, static_cast<int64_t>(e.count * dtypeBytes(e.dtype)));
    out->append(",");
    appendKey(out, "stream");
    char sbuf[32];
    std::snprintf(sbuf, sizeof sbuf, "\"0x%" PRIx64 "\"", e.stream);
    out->append(sbuf);
    if (e.groupId != 0) {
      out->append(",");
      appendKey(out, "group");
      appendInt(out, e.groupId);
    }
    out->append(",");
    appendKey(out, "thread");
    appendInt(out, e.threadId);
    out->append(",");
    appendKey(out, "result");
    appendInt(out, e.result);
    out->append(",");
    appendKey(out, "enqueue_us");
    appendMicros(out, enq != 0 ? satSub(enq, info.baseNs) : 0);
    out->append(",");
    appendKey(out, "call_ns");
    appendInt(out, e.callDurationNs);
    if (pending) out->append(",\"pending\":true");
    if (shifted) out->append(",\"adjusted_to_nest\":true");
    if (note) {
      out->append(",");
      appendKey(out, "note");
      appendJsonString(out, note);
    }
    out->append("}}");
    ++*events;
  }

  // The dump itself, as an instant on the process.
  if (dumpWall > 0) {
    out->append(",\n{\"ph\":\"i\",\"s\":\"p\",\"name\":");
    appendJsonString(out, "dump: " + enumName(p.reason));
    out->append(",\"pid\":");
    appendInt(out, pid);
    out->append(",\"tid\":0,\"ts\":");
    appendMicros(out, satSub(dumpWall, info.baseNs));
    out->append(",\"args\":{\"detail\":");
    appendJsonString(out, truncateUtf8(p.detail, 1024));
    out->append(",\"incident\":");
    appendJsonString(out, truncateUtf8(p.incidentId, 256));
    out->append("}}");
  }
  return true;
}

// The earliest time a process's exported entries can have (the oldest entries' enqueue), so that
// every ts is >= 0: Perfetto's JSON importer does not take negative timestamps.
int64_t earliestWallNs(const ProcessDump& p, size_t last) {
  int64_t best = 0;
  auto consider = [&](int64_t wall) {
    if (wall > 0 && (best == 0 || wall < best)) best = wall;
  };
  if (p.dumpMonoNs != 0) consider(wallOf(p, p.dumpMonoNs));
  consider(p.dumpWallNs);
  std::string error;
  if (p.paths.empty()) return best;
  auto file = DumpFile::open(p.paths[0], &error);
  if (!file) return best;
  try {
    auto entries = file->dump().getEntries();
    uint32_t n = entries.size();
    uint32_t begin = (last > 0 && last < n) ? n - static_cast<uint32_t>(last) : 0;
    // Ring order is call order per thread; several threads interleave, so look a little further.
    for (uint32_t k = begin; k < n && k < begin + 256; ++k) {
      auto e = entries[k];
      for (int64_t mono : {e.getEnqueueMonoNs(), e.getStartMonoNs()}) {
        if (mono != 0) consider(wallOf(p, mono));
      }
    }
  } catch (...) {
  }
  return best;
}

std::vector<Selected> selectProcesses(const Job& job, const TraceOptions& options) {
  std::vector<Selected> sel;
  for (size_t k = 0; k < job.processes.size(); ++k) {
    const auto& p = job.processes[k];
    if (!options.ranks.empty() && !options.ranks.count(p.globalRank)) continue;
    sel.push_back({k, tracePid(p, k)});
  }
  return sel;
}

JobInfo jobInfo(const Job& job, const Verdict* verdict, const std::vector<Selected>& sel, const TraceOptions& options) {
  JobInfo info;
  info.worldSize = job.worldSize;
  int64_t earliest = 0;
  {
    std::vector<int64_t> e(sel.size(), 0);
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t k; (k = next.fetch_add(1)) < sel.size();) e[k] = earliestWallNs(job.processes[sel[k].index], options.last);
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < std::max(1u, options.threads); ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    for (int64_t w : e) {
      if (w > 0 && (earliest == 0 || w < earliest)) earliest = w;
    }
  }
  for (const auto& p : job.processes) {
    if (p.incidentWallNs > 0 && (info.incidentWallNs == 0 || p.incidentWallNs < info.incidentWallNs)) {
      info.incidentWallNs = p.incidentWallNs;
    }
  }
  if (info.incidentWallNs > 0 && (earliest == 0 || info.incidentWallNs < earliest)) earliest = info.incidentWallNs;
  // A whole second, one before the earliest call: round numbers in the viewer, and room for a
  // thread whose calls interleave with the first ones read.
  info.baseNs = earliest > 0 ? (earliest / 1'000'000'000 - 1) * 1'000'000'000 : 0;
  if (info.baseNs < 0) info.baseNs = 0;
  if (verdict) {
    std::map<std::tuple<std::string, uint32_t, int32_t>, size_t> index;
    for (size_t k = 0; k < job.processes.size(); ++k) {
      const auto& p = job.processes[k];
      index.emplace(std::make_tuple(p.host, p.pid, p.globalRank), k);
    }
    for (const auto& s : verdict->suspects) {
      auto it = index.find(std::make_tuple(s.who.host, s.who.pid, s.who.rank));
      if (it == index.end()) continue;
      auto& l = info.labels[it->second];
      std::string t = std::string("suspect: ") + analysis::reasonName(s.reason);
      if (std::find(l.begin(), l.end(), t) == l.end()) l.push_back(t);
    }
  }
  for (size_t k = 0; k < job.processes.size(); ++k) {
    if (job.processes[k].processDied) info.labels[k].push_back("died");
  }
  return info;
}

std::string header(const Job& job, const Verdict* verdict, const JobInfo& info, int64_t rank, int64_t firstPid,
                   int32_t ncclVersion, const std::string& pg, size_t pgCount) {
  std::string out = "{\"schemaVersion\":1,\n\"displayTimeUnit\":\"ns\",\n\"baseTimeNanoseconds\":";
  appendInt(&out, info.baseNs);
  out += ",\n\"traceName\":";
  appendJsonString(&out, "ncclfr " + (job.jobId.empty() ? std::string("(no job id)") : job.jobId) +
                             (job.incidentId.empty() ? "" : " incident " + job.incidentId));
  out += ",\n\"distributedInfo\":{\"backend\":\"nccl\",\"rank\":";
  appendInt(&out, rank);
  out += ",\"world_size\":";
  appendInt(&out, info.worldSize);
  std::string nv = ncclVersionText(ncclVersion);
  if (!nv.empty()) {
    out += ",\"nccl_version\":";
    appendJsonString(&out, nv);
  }
  out += ",\"pg_count\":";
  appendInt(&out, static_cast<int64_t>(pgCount));
  out += ",\"pg_config\":" + pg + "},\n\"otherData\":{\"tool\":";
  appendJsonString(&out, std::string("ncclfr ") + NCCLFR_VERSION_STRING);
  out += ",\"job\":";
  appendJsonString(&out, truncateUtf8(job.jobId, 256));
  out += ",\"incident\":";
  appendJsonString(&out, truncateUtf8(job.incidentId, 256));
  out += ",\"incident_wall_ns\":";
  appendInt(&out, info.incidentWallNs);
  out += ",\"clock\":\"wall clock: each dump's monotonic times are placed with its clock base (wall = mono + wallNs - monoNs); ts are microseconds after baseTimeNanoseconds\"";
  if (verdict) {
    out += ",\"status\":";
    appendJsonString(&out, analysis::statusName(verdict->status));
    out += ",\"summary\":";
    appendJsonString(&out, verdict->summary);
  }
  out += "},\n\"traceEvents\":[\n";
  // The first event; every later one starts with its own ",\n".
  out += "{\"ph\":\"i\",\"s\":\"g\",\"name\":\"incident detected\",\"pid\":";
  appendInt(&out, firstPid);
  out += ",\"tid\":0,\"ts\":";
  appendMicros(&out, info.incidentWallNs > info.baseNs ? info.incidentWallNs - info.baseNs : 0);
  out += ",\"args\":{\"incident_wall_ns\":";
  appendInt(&out, info.incidentWallNs);
  out += "}}";
  return out;
}

const char* kFooter = "\n]}\n";

}  // namespace

bool writeChromeTrace(const Job& job, const Verdict* verdict, const TraceOptions& options, std::ostream& out,
                      std::vector<Problem>* problems, TraceStats* stats, std::string* error) {
  auto sel = selectProcesses(job, options);
  if (sel.empty()) {
    *error = options.ranks.empty() ? "no processes to export" : "none of the requested ranks has a dump";
    return false;
  }
  JobInfo info = jobInfo(job, verdict, sel, options);
  int32_t ncclVersion = 0;
  {
    std::string e;
    auto f = job.processes[sel[0].index].paths.empty()
                 ? nullptr
                 : DumpFile::open(job.processes[sel[0].index].paths[0], &e);
    if (f) {
      try {
        ncclVersion = f->dump().getProcess().getNcclVersion();
      } catch (...) {
      }
    }
  }
  size_t pgCount = 0;
  std::string pg = pgConfig(verdict, nullptr, &pgCount);
  int64_t firstRank = job.processes[sel[0].index].globalRank;
  out << header(job, verdict, info, std::max<int64_t>(firstRank, 0), sel[0].pid, ncclVersion, pg, pgCount);

  TraceStats st;
  // Processes are rendered in parallel batches and written in order.
  const unsigned threads = std::max(1u, std::min(options.threads, 64u));
  const size_t batch = threads * 4;
  for (size_t begin = 0; begin < sel.size(); begin += batch) {
    size_t end = std::min(sel.size(), begin + batch);
    std::vector<std::string> text(end - begin);
    std::vector<std::string> errors(end - begin);
    std::vector<size_t> events(end - begin, 0);
    std::vector<char> ok(end - begin, 0);
    std::atomic<size_t> next{begin};
    auto work = [&] {
      for (size_t k; (k = next.fetch_add(1)) < end;) {
        const auto& s = sel[k];
        ok[k - begin] = renderProcess(job.processes[s.index], s.index, s.pid, info, options, &text[k - begin],
                                      &events[k - begin], &errors[k - begin])
                            ? 1
                            : 0;
      }
    };
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    for (size_t k = 0; k < text.size(); ++k) {
      if (!ok[k]) {
        if (problems) problems->push_back({"", errors[k]});
        continue;
      }
      out << text[k];
      ++st.processes;
      st.events += events[k];
    }
  }
  out << kFooter;
  out.flush();
  if (!out) {
    *error = "write failed";
    return false;
  }
  if (stats) *stats = st;
  return true;
}

bool writeChromeTracePerRank(const Job& job, const Verdict* verdict, const TraceOptions& options,
                             const std::string& dir, std::vector<Problem>* problems, TraceStats* stats,
                             std::string* error) {
  auto sel = selectProcesses(job, options);
  if (sel.empty()) {
    *error = options.ranks.empty() ? "no processes to export" : "none of the requested ranks has a dump";
    return false;
  }
  // The folder itself is made, not its parents: like every other writer, a mistyped path fails
  // rather than growing a tree somewhere unexpected.
  std::error_code ec;
  fs::create_directory(dir, ec);
  if (ec) {
    *error = "cannot write " + dir + ": " + ec.message();
    return false;
  }
  if (!fs::is_directory(dir, ec)) {
    *error = "cannot write " + dir + ": " + std::strerror(ENOTDIR);
    return false;
  }
  JobInfo info = jobInfo(job, verdict, sel, options);
  TraceStats st;
  std::atomic<size_t> next{0};
  std::vector<std::string> errors(sel.size());
  std::vector<size_t> events(sel.size(), 0);
  std::vector<char> ok(sel.size(), 0);
  auto work = [&] {
    for (size_t k; (k = next.fetch_add(1)) < sel.size();) {
      const auto& s = sel[k];
      const ProcessDump& p = job.processes[s.index];
      std::string body;
      if (!renderProcess(p, s.index, s.pid, info, options, &body, &events[k], &errors[k])) continue;
      std::string file;
      if (p.globalRank >= 0) {
        file = "rank" + std::to_string(p.globalRank) + ".json";
      } else {
        // The host name comes from the dump: keep only characters that are safe in a file name.
        std::string host;
        for (char c : truncateUtf8(p.host, 64)) {
          host.push_back((std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_');
        }
        file = host + "-" + std::to_string(p.pid) + ".json";
      }
      std::set<uint64_t> ids;
      for (const auto& c : p.comms) ids.insert(c.id);
      size_t pgCount = 0;
      std::string pg = pgConfig(verdict, &ids, &pgCount);
      int32_t ncclVersion = 0;
      {
        std::string e;
        auto f = DumpFile::open(p.paths[0], &e);
        if (f) {
          try {
            ncclVersion = f->dump().getProcess().getNcclVersion();
          } catch (...) {
          }
        }
      }
      std::ofstream o(fs::path(dir) / file, std::ios::binary | std::ios::trunc);
      o << header(job, verdict, info, s.pid, s.pid, ncclVersion, pg, pgCount) << body << kFooter;
      o.close();
      if (!o) {
        errors[k] = (fs::path(dir) / file).string() + ": write failed";
        continue;
      }
      ok[k] = 1;
    }
  };
  const unsigned threads = std::max(1u, std::min(options.threads, 64u));
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  for (size_t k = 0; k < sel.size(); ++k) {
    if (!ok[k]) {
      if (problems) problems->push_back({"", errors[k]});
      continue;
    }
    ++st.processes;
    st.events += events[k];
  }
  if (stats) *stats = st;
  if (st.processes == 0) {
    *error = "no trace file could be written";
    return false;
  }
  return true;
}

bool parseRankList(const std::string& text, std::set<int32_t>* ranks) {
  size_t pos = 0;
  auto number = [&](int64_t* v) {
    size_t start = pos;
    int64_t n = 0;
    while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      n = n * 10 + (text[pos] - '0');
      if (n > (1 << 24)) return false;
      ++pos;
    }
    *v = n;
    return pos > start;
  };
  while (pos < text.size()) {
    int64_t a = 0, b = 0;
    if (!number(&a)) return false;
    b = a;
    if (pos < text.size() && text[pos] == '-') {
      ++pos;
      if (!number(&b) || b < a) return false;
    }
    for (int64_t r = a; r <= b; ++r) ranks->insert(static_cast<int32_t>(r));
    if (pos < text.size()) {
      if (text[pos] != ',') return false;
      ++pos;
      if (pos == text.size()) return false;
    }
  }
  return !ranks->empty();
}

}  // namespace ncclfr::viewer
