// Drives the dashboard of a running `samsync-server run --http` in Debian's headless
// Chromium (playwright-core), for tests/dashboard_cli_test.cc, which compares what it
// prints with `samsync-server report --format json`.
//
//   node dashboard_browser.js WEB_DIR BASE_URL TOKEN SCREENSHOT_DIR
//
// WEB_DIR holds node_modules/playwright-core (the build folder's web/). Prints one JSON
// object on stdout: the HTTP status without a token, every cell of the overview and
// of one district page, the English labels, and the overview's serve times. Any
// failure (no Chromium, a page that does not load) exits non-zero: nothing is skipped.
'use strict';
const path = require('path');
const fs = require('fs');

async function main() {
  const [webDir, base, token, shots] = process.argv.slice(2);
  if (!shots) throw new Error('usage: dashboard_browser.js WEB_DIR BASE_URL TOKEN SCREENSHOT_DIR');
  const executablePath = '/usr/bin/chromium';
  if (!fs.existsSync(executablePath)) throw new Error(executablePath + ' is missing: scripts/deps installs chromium');
  const { chromium } = require(path.join(webDir, 'node_modules', 'playwright-core'));
  const out = {};

  // Without a token: 401, for the page, the JSON and the chart library.
  out.unauthorised = {};
  for (const p of ['/', '/api/report.json', '/assets/chart.umd.min.js', '/district/Farsta']) {
    out.unauthorised[p] = (await fetch(base + p)).status;
  }
  out.wrongToken = (await fetch(base + '/', { headers: { Authorization: 'Bearer ' + 'a'.repeat(64) + '.' + 'b'.repeat(64) } })).status;
  out.bearer = (await fetch(base + '/', { headers: { Authorization: 'Bearer ' + token } })).status;

  // The overview's serve time, with the token, after one warm-up request.
  const times = [];
  const serverTimes = [];
  for (let i = 0; i < 21; i++) {
    const started = performance.now();
    const response = await fetch(base + '/', { headers: { Authorization: 'Bearer ' + token } });
    await response.text();
    if (i > 0) {
      times.push(performance.now() - started);
      const timing = /dur=([0-9.]+)/.exec(response.headers.get('server-timing') || '');
      if (timing) serverTimes.push(Number(timing[1]));
    }
  }
  times.sort((a, b) => a - b);
  serverTimes.sort((a, b) => a - b);
  out.serveMs = { median: times[Math.floor(times.length / 2)], max: times[times.length - 1],
                  serverMedian: serverTimes[Math.floor(serverTimes.length / 2)] };

  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    // The link `samsync-server token` gives: ?token= sets the cookie.
    const first = await page.goto(base + '/?token=' + token);
    out.overviewStatus = first.status();
    out.term = await page.getAttribute('#overview', 'data-term');
    out.title = await page.textContent('h1');
    out.overview = await page.$$eval('#overview tbody tr', (rows) => rows.map((tr) => ({
      district: tr.dataset.district,
      cells: [...tr.querySelectorAll('td[data-key]')].map((td) => ({ key: td.dataset.key, status: td.dataset.status, text: td.textContent })),
    })));
    await page.screenshot({ path: path.join(shots, 'dashboard-overview.png'), fullPage: true });

    // A district page: the cookie carries the token now.
    const district = await page.goto(base + '/district/Farsta');
    out.districtStatus = district.status();
    await page.waitForFunction(() => document.body.dataset.charts !== undefined);
    out.districtCharts = Number(await page.evaluate(() => document.body.dataset.charts));
    out.districtCanvases = await page.$$eval('canvas', (c) => c.filter((x) => x.width > 0 && x.height > 0).length);
    out.district = await page.$$eval('#terms tbody tr', (rows) => rows.map((tr) => ({
      key: tr.dataset.key,
      cells: [...tr.querySelectorAll('td')].map((td) => ({ term: td.dataset.term, status: td.dataset.status, text: td.textContent })),
    })));
    await page.screenshot({ path: path.join(shots, 'dashboard-district.png'), fullPage: true });

    const parity = await page.goto(base + '/parity');
    out.parityStatus = parity.status();
    out.parityRows = await page.$$eval('#parity tbody tr', (rows) => rows.length);
    await page.screenshot({ path: path.join(shots, 'dashboard-parity.png'), fullPage: true });

    // English, then back to Swedish (the switch is kept in a cookie).
    await page.goto(base + '/?lang=en');
    out.english = { title: await page.textContent('h1'), firstHeader: await page.textContent('#overview thead th') };
    await page.goto(base + '/');
    out.englishKept = await page.textContent('#overview thead th');
    await page.goto(base + '/?lang=sv');
    out.swedish = await page.textContent('#overview thead th');
    out.pageErrors = errors;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write('dashboard_browser.js: ' + (e && e.stack ? e.stack : e) + '\n');
  process.exit(1);
});
