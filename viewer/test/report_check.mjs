// The report in a real browser: Debian's chromium, headless, driven by playwright-core (no browser
// download: executablePath is the system one). Run by tests/viewer/browser_test.sh.
//
//   node report_check.mjs --report R.html --rank 9 --comm 0x... --frontier 2566 [--reason host_stall]
//                         --screenshot out.png
//   node report_check.mjs --hostile H.html --text '<img src=x onerror=alert(1)>' --screenshot out.png
//   node report_check.mjs --smoke A.html,B.html,...      (each opens, draws and answers clicks cleanly)
//   node report_check.mjs --open R.html [--runs 5]      (benchmark: prints open-and-draw times)
//
// Exit 0 all checks passed, 1 a check failed, 77 no browser could be started (the caller skips).
import { chromium } from 'playwright-core';
import { pathToFileURL } from 'node:url';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const executablePath = args.chromium || process.env.NCCLFR_CHROMIUM || '/usr/bin/chromium';

let failures = 0;
function check(ok, what) {
  console.log((ok ? 'ok    ' : 'FAIL  ') + what);
  if (!ok) failures++;
}

async function launch() {
  if (!existsSync(executablePath)) {
    console.log(`SKIP: no browser at ${executablePath}`);
    process.exit(77);
  }
  // A fresh profile (--user-data-dir, which playwright passes for a persistent context) for every
  // run; the machine has no network, and nothing may try to reach it.
  const profile = mkdtempSync(join(tmpdir(), 'ncclfr-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1400, height: 1000 },
      timeout: 60000,
    });
    return { context, cleanup: () => rmSync(profile, { recursive: true, force: true }) };
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    console.log(`SKIP: chromium at ${executablePath} did not start: ${String(e.message).split('\n')[0]}`);
    process.exit(77);
  }
}

// Opens a page and records everything that must not happen: console errors, uncaught exceptions,
// dialogs (alert() from an injected payload), and requests that leave the file.
async function openPage(context, file) {
  const page = await context.newPage();
  const seen = { errors: [], dialogs: [], requests: [] };
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') seen.errors.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => seen.errors.push(`exception: ${e.message}`));
  page.on('dialog', async (d) => { seen.dialogs.push(`${d.type()}: ${d.message()}`); await d.dismiss(); });
  page.on('request', (r) => { if (!r.url().startsWith('file:')) seen.requests.push(r.url()); });
  const url = pathToFileURL(resolve(file)).href;
  const t0 = Date.now();
  await page.goto(url, { waitUntil: 'load', timeout: 60000 });
  await page.waitForSelector('html[data-ready]', { timeout: 60000 });
  // Drawn means painted: wait for the frame after the one that laid the page out.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  const wallMs = Date.now() - t0;
  const ready = await page.evaluate(() => document.documentElement.getAttribute('data-ready'));
  const readyMs = await page.evaluate(() => (window.ncclfrReport ? window.ncclfrReport.readyMs : -1));
  return { page, seen, ready, readyMs, wallMs };
}

async function checkReport(context) {
  const { page, seen, ready, readyMs } = await openPage(context, args.report);
  check(ready === '1', `report drew itself (ready=${ready}, ${readyMs.toFixed(0)} ms after navigation)`);
  const status = (await page.textContent('#status')) || '';
  check(/^(HANG|DESYNC|INCOMPLETE)$/.test(status), `verdict status shown: ${status}`);
  const rank = args.rank;
  check(await page.locator(`#suspects tr[data-suspect-rank="${rank}"]`).count() === 1, `suspect rank ${rank} listed in the verdict`);
  if (args.reason) {
    const reasonText = await page.locator(`#suspects tr[data-suspect-rank="${rank}"] .reason`).textContent();
    check(reasonText === args.reason.replace('_', ' '), `its reason is ${args.reason} (${reasonText})`);
  }
  const card = page.locator(`.comm[data-comm-id="${args.comm}"]`);
  check(await card.count() === 1, `communicator ${args.comm} has a card`);
  check(await card.locator('.comm-body').isVisible(), 'its timeline is open when the page opens');
  const lane = card.locator(`.lane.suspect[data-rank="${rank}"]`);
  check(await lane.count() === 1, `rank ${rank}'s lane is marked as the suspect`);
  const label = (await lane.locator('.lane-label').textContent()) || '';
  check(label.includes(`rank ${rank}`), `the marked lane is labelled "${label}"`);
  check(await card.locator(`.badge.frontier[data-frontier="${args.frontier}"]`).count() === 1,
    `frontier #${args.frontier} named in the card's header`);
  const frontierBars = card.locator(`.bar.frontier[data-seq="${args.frontier}"]`);
  check(await frontierBars.count() >= 1, `frontier bars highlighted (${await frontierBars.count()})`);
  if (args.reason === 'host_stall') {
    check(await lane.locator('.bar.never.frontier').count() === 1, 'the suspect lane shows the call it never issued');
  }
  // Hover shows a tooltip, click shows the details.
  const bar = card.locator(`.bar.frontier[data-seq="${args.frontier}"]:not(.never)`).first();
  await bar.hover({ force: true });
  const tip = await page.locator('#tooltip').textContent();
  check(await page.locator('#tooltip').isVisible() && /call: .*#/.test(tip || ''), 'hovering a bar shows a tooltip');
  await bar.click({ force: true });
  await settle(page);
  const details = card.locator('.details[data-kind="entry"]');
  check(await details.isVisible(), 'clicking a bar shows its details');
  const text = (await details.textContent()) || '';
  for (const field of ['call', 'dtype', 'count', 'enqueued', 'started', 'ended', 'rank']) {
    check(text.includes(field), `details show ${field}`);
  }
  check(/elements \([\d.]+ (B|KiB|MiB|GiB)\)/.test(text), 'sizes in human units');
  check(/t [\u2212+] [\d.]+ (s|ms|\u00b5s)/.test(text), 'times relative to the incident');
  await page.mouse.move(0, 0);
  await page.screenshot({ path: args.screenshot, fullPage: true });
  console.log(`screenshot: ${resolve(args.screenshot)}`);
  // Zoom and pan move the bars (redraws happen on the next animation frame).
  const firstBar = () => card.locator(`.bar.frontier[data-seq="${args.frontier}"]:not(.never)`).first();
  const moved = async (old) => {
    for (let i = 0; i < 100; i++) {
      const x = await firstBar().getAttribute('x');
      if (x !== old) return x;
      await page.waitForTimeout(50);
    }
    return old;
  };
  const x0 = await firstBar().getAttribute('x');
  await card.locator('button', { hasText: /^\+$/ }).click();
  const x1 = await moved(x0);
  check(x0 !== x1, `zoom redraws (x ${x0} -> ${x1})`);
  await card.locator('button', { hasText: /^\u2192$/ }).click();
  const x2 = await moved(x1);
  check(x1 !== x2, `pan redraws (x ${x1} -> ${x2})`);
  // Filter by rank: only that rank's communicators stay, its lane is marked.
  const present = (selector) => page.waitForSelector(selector, { timeout: 10000 }).then(() => true, () => false);
  await page.fill('#rank-filter', String(rank));
  check(await present(`.lane.focus[data-rank="${rank}"]`), 'the rank filter highlights the rank\'s lanes');
  const matching = (await page.textContent('#match-count')) || '';
  check(/ of /.test(matching), `rank filter applied (${matching})`);
  await page.fill('#rank-filter', '');
  check(await page.waitForFunction(() => !document.querySelector('.lane.focus'), null, { timeout: 10000 }).then(() => true, () => false),
    'clearing the filter clears the highlight');
  // Switch the open timeline to the sequence axis: the frontier column is drawn.
  await card.locator('select').selectOption('seq');
  check(await present(`.comm[data-comm-id="${args.comm}"] .frontier-band`), 'sequence axis draws the frontier column');
  check(seen.requests.length === 0, `no network requests (${seen.requests.join(', ')})`);
  check(seen.dialogs.length === 0, 'no dialogs');
  check(seen.errors.length === 0, `no console errors or warnings${seen.errors.length ? ': ' + seen.errors.join(' | ') : ''}`);
  await page.close();
}

async function checkHostile(context) {
  const { page, seen, ready } = await openPage(context, args.hostile);
  check(ready === '1', 'hostile report drew itself');
  await page.waitForTimeout(500);  // time for any injected onerror/onload to fire
  const needle = args.text;
  const shown = page.getByText(needle, { exact: false }).first();
  check(await shown.count() === 1 && await shown.isVisible(), `the host name is shown as text: ${needle}`);
  check(await page.evaluate(() => document.images.length) === 0, 'no <img> element was created');
  check(await page.evaluate(() => document.querySelectorAll('script').length) === 2, 'no <script> element was added');
  check(await page.evaluate(() => document.querySelectorAll('svg [onload], [onerror], [onmouseover]').length) === 0,
    'no element carries an event handler attribute');
  const title = await page.title();
  check(title.includes('</script><script>alert(2)</script>'), `the hostile job id is the page title, as text`);
  // Open the process details of the hostile rank: the command line shows as text.
  const lane = page.locator('.lane.suspect .lane-label').first();
  await lane.click({ force: true });
  const details = (await page.locator('.details[data-kind="rank"]').first().textContent()) || '';
  check(details.includes('<script>alert(4)</script>'), 'the command line is shown as text');
  check(details.includes(needle), 'the process details show the host name as text');
  await page.mouse.move(0, 0);
  await page.screenshot({ path: args.screenshot, fullPage: true });
  console.log(`screenshot: ${resolve(args.screenshot)}`);
  check(seen.dialogs.length === 0, `no dialog fired${seen.dialogs.length ? ': ' + seen.dialogs.join(' | ') : ''}`);
  check(seen.requests.length === 0, `no network requests (${seen.requests.join(', ')})`);
  check(seen.errors.length === 0, `no console errors or warnings${seen.errors.length ? ': ' + seen.errors.join(' | ') : ''}`);
  await page.close();
}

// Clicks redraw a timeline on the next animation frame, replacing its elements: wait for that
// before looking for the next thing to click.
const settle = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

// Every page opens cleanly and every timeline it draws answers a click on a bar and on a lane.
async function smoke(context) {
  for (const file of args.smoke.split(',').filter(Boolean)) {
    const { page, seen, ready } = await openPage(context, file);
    const cards = await page.locator('.comm-body:not([hidden])').count();
    let clicked = 0;
    for (let i = 0; i < cards; i++) {
      const body = page.locator('.comm-body:not([hidden])').nth(i);
      const bar = body.locator('.bar').first();
      if (await bar.count()) { await bar.click({ force: true }); clicked++; await settle(page); }
      const label = body.locator('.lane-label').first();
      if (await label.count()) { await label.click({ force: true }); await settle(page); }
    }
    // The sequence axis and a group's expansion on the first open timeline.
    if (cards) {
      const body = page.locator('.comm-body:not([hidden])').first();
      await body.locator('select').selectOption('seq');
      await settle(page);
      const group = body.locator('.lane.group .lane-label').first();
      if (await group.count()) { await group.click({ force: true }); await settle(page); }
    }
    await page.waitForTimeout(100);
    const status = await page.textContent('#status');
    check(ready === '1' && seen.errors.length === 0 && seen.dialogs.length === 0,
      `${file}: ${status}, ${cards} timeline(s) drawn, ${clicked} bar(s) clicked${seen.errors.length ? ': ' + seen.errors.join(' | ') : ''}`);
    await page.close();
  }
}

async function benchmarkOpen(context) {
  const runs = Number(args.runs || 5);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const { page, seen, ready, readyMs, wallMs } = await openPage(context, args.open);
    check(ready === '1' && seen.errors.length === 0, `run ${i + 1}: drawn in ${readyMs.toFixed(0)} ms (page), ${wallMs} ms (wall, load + parse + draw)`);
    times.push(wallMs);
    await page.close();
  }
  times.sort((a, b) => a - b);
  console.log(`open-and-draw wall ms: median ${times[Math.floor(times.length / 2)]}, min ${times[0]}, max ${times[times.length - 1]}`);
}

const { context, cleanup } = await launch();
try {
  if (args.report) await checkReport(context);
  if (args.hostile) await checkHostile(context);
  if (args.open) await benchmarkOpen(context);
  if (args.smoke) await smoke(context);
} catch (e) {
  console.log(`FAIL  ${e.stack || e}`);
  failures++;
} finally {
  await context.close();
  cleanup();
}
console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
