// The report's words about the verdict match `ncclfr analyze`'s text: how many ranks left a dump
// ("16 of 16 ranks have a dump"), how much a suspect holds up ("22 calls other ranks wait in"), a
// send or recv with its peer; never "process(es)" or "rank-communicator pair". Run by
// browser_test.sh with NODE_PATH pointing at viewer/test/node_modules (playwright-core, Debian's
// chromium).
//
//   node wording_check.cjs REPORT.html FOUND EXPECTED BLOCKING [CALL]
//
// Exit 0 passed, 1 a check failed, 77 no browser could be started (the caller skips).
'use strict';
const { chromium } = require('playwright-core');
const { pathToFileURL } = require('node:url');
const { mkdtempSync, rmSync, existsSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const [report, found, expected, blocking, call] = process.argv.slice(2);
const executablePath = process.env.NCCLFR_CHROMIUM || '/usr/bin/chromium';
let failures = 0;
function check(ok, what) {
  console.log((ok ? 'ok    ' : 'FAIL  ') + what);
  if (!ok) failures++;
}

(async () => {
  if (!existsSync(executablePath)) {
    console.log(`SKIP: no browser at ${executablePath}`);
    process.exit(77);
  }
  const profile = mkdtempSync(join(tmpdir(), 'ncclfr-chromium-'));
  let context;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60000,
    });
  } catch (e) {
    rmSync(profile, { recursive: true, force: true });
    console.log(`SKIP: chromium at ${executablePath} did not start: ${String(e.message).split('\n')[0]}`);
    process.exit(77);
  }
  try {
    const page = await context.newPage();
    await page.goto(pathToFileURL(resolve(report)).href, { waitUntil: 'load', timeout: 60000 });
    await page.waitForSelector('html[data-ready]', { timeout: 60000 });
    const ctx = (await page.textContent('#context')) || '';
    const body = await page.evaluate(() => document.body.innerText);
    const held = (await page.locator('#suspects tbody tr').first().locator('td').nth(6).textContent()) || '';
    const where = (await page.locator('#suspects tbody tr').first().locator('td').nth(4).textContent()) || '';
    const n = Number(blocking);
    check(ctx.includes(`${found} of ${expected} ranks have a dump`), `the context says "${found} of ${expected} ranks have a dump": ${ctx}`);
    check(held === (n === 1 ? '1 call another rank waits in' : `${n} calls other ranks wait in`),
      `the first suspect holds up ${n} calls, said as ncclfr analyze does: ${held}`);
    if (call) check(where.startsWith(call), `the first suspect's call is "${call}": ${where}`);
    check(!body.includes('process(es)'), 'no "process(es)"');
    check(!body.includes('rank-communicator'), 'no "rank-communicator pair"');
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  process.exit(failures ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL  ${e.stack || e}`);
  process.exit(1);
});
