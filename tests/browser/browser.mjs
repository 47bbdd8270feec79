// browser.mjs BASE_URL HOSTILE_PATH OUT_DIR - loads imgmeta's HTML pages in
// Debian's chromium (puppeteer-core, pointed at /usr/bin/chromium; nothing is
// downloaded) from a daemon on loopback, and prints one "ok   NAME" or
// "FAIL NAME" line per check (tests/browser/browser.sh counts them):
//  - the python:3.7-slim page: its title, 7 platforms, one bar segment per
//    layer, the size-over-time chart's points (one change: one per
//    platform), no console error, no request leaving the page, axe-core finds no
//    serious or critical violation, nothing wider than 360 px at 360 px;
//    screenshots at 1280 and 360 px wide into OUT_DIR;
//  - a page whose history, media types and platform carry script, an
//    attribute break-out and </svg>: no script runs even with the
//    Content-Security-Policy bypassed (the escaping alone keeps them text),
//    and the payloads are on the page as text;
//  - the home page's form: a reference typed in lands on its page; a tag that
//    does not exist on a 404 page that says so.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import puppeteer from "puppeteer-core";

const require = createRequire(import.meta.url);
const [base, hostilePath, outDir] = process.argv.slice(2);
if (!base || !hostilePath || !outDir) {
  console.error("usage: browser.mjs BASE_URL HOSTILE_PATH OUT_DIR");
  process.exit(2);
}
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const PAYLOADS = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "</svg>"];

let failed = 0;
function check(name, ok, detail) {
  console.log(`${ok ? "ok  " : "FAIL"} ${name}`);
  if (!ok) {
    failed++;
    if (detail !== undefined) console.log(`     ${JSON.stringify(detail)}`);
  }
}

// A page that records console errors, page errors, requests to anything but
// the daemon, and calls of alert().
async function open(browser, { bypassCSP = false, width = 1280 } = {}) {
  const page = await browser.newPage();
  const seen = { errors: [], offsite: [] };
  page.on("console", (m) => m.type() === "error" && seen.errors.push(m.text()));
  page.on("pageerror", (e) => seen.errors.push(String(e)));
  page.on("request", (r) => {
    if (!r.url().startsWith(base) && !r.url().startsWith("data:")) seen.offsite.push(r.url());
  });
  await page.setBypassCSP(bypassCSP);
  await page.setViewport({ width, height: 900 });
  await page.evaluateOnNewDocument(() => {
    window.__ran = 0;
    window.alert = () => window.__ran++;
  });
  return { page, seen };
}

// What a person sees of the image page.
function facts(page) {
  return page.evaluate(() => {
    const bars = [...document.querySelectorAll("svg.layers")];
    const rows = [...document.querySelectorAll("table.summary tbody tr")];
    return {
      title: document.title,
      platforms: rows.length,
      layerCounts: rows.map((r) => Number(r.cells[3].textContent)),
      segments: bars.map((b) => b.querySelectorAll("rect.seg").length),
      titled: bars.every((b) => [...b.querySelectorAll("rect.seg")].every((r) => r.querySelector("title"))),
      points: [...document.querySelectorAll("svg.history circle")].map((c) => ({
        titled: !!c.querySelector("title"),
        drawn: c.getBoundingClientRect().width > 0,
      })),
      scripts: document.querySelectorAll("script").length,
      imgs: document.querySelectorAll("img").length,
      ran: window.__ran,
      width: document.documentElement.scrollWidth,
      text: document.body.textContent,
    };
  });
}

async function imagePage(browser) {
  const { page, seen } = await open(browser);
  const resp = await page.goto(`${base}/images/python/3.7-slim`, { waitUntil: "load" });
  check("python:3.7-slim: 200 text/html to a browser's Accept",
    resp.status() === 200 && resp.headers()["content-type"] === "text/html; charset=utf-8",
    [resp.status(), resp.headers()["content-type"]]);
  const f = await facts(page);
  check("python:3.7-slim: the title", f.title === "python:3.7-slim - imgmeta", f.title);
  check("python:3.7-slim: 7 platforms in the table", f.platforms === 7, f.platforms);
  check("python:3.7-slim: a bar per platform, one segment per layer",
    f.segments.length === 7 && f.segments.every((n, i) => n === f.layerCounts[i] && n > 0),
    { segments: f.segments, layers: f.layerCounts });
  check("python:3.7-slim: every segment has a <title>", f.titled);
  check("python:3.7-slim: the size-over-time chart draws a point per platform, each titled",
    f.points.length === 7 && f.points.every((p) => p.titled && p.drawn), f.points);
  await page.screenshot({ path: `${outDir}/python-3.7-slim-1280.png`, fullPage: true });

  await page.setViewport({ width: 360, height: 800 });
  const narrow = await facts(page);
  check("python:3.7-slim: nothing wider than the screen at 360 px", narrow.width <= 360, narrow.width);
  await page.screenshot({ path: `${outDir}/python-3.7-slim-360.png`, fullPage: true });
  check("python:3.7-slim: no console error", seen.errors.length === 0, seen.errors);
  check("python:3.7-slim: nothing requested off the page", seen.offsite.length === 0, seen.offsite);

  // The page's Content-Security-Policy refuses a script put into it...
  await page.addScriptTag({ content: "window.alert(1)" }).catch(() => {});
  check("python:3.7-slim: its Content-Security-Policy refuses an inline script",
    (await page.evaluate(() => window.__ran)) === 0 &&
    seen.errors.some((e) => e.includes("Content Security Policy")), seen.errors);
  await page.close();

  // ...so axe-core runs in a page loaded with the policy bypassed, in the
  // light colour scheme and in the dark one (colour contrast differs).
  for (const scheme of ["light", "dark"]) {
    const again = await open(browser, { bypassCSP: true });
    await again.page.emulateMediaFeatures([{ name: "prefers-color-scheme", value: scheme }]);
    await again.page.goto(`${base}/images/python/3.7-slim`, { waitUntil: "load" });
    const bg = await again.page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    check(`python:3.7-slim (${scheme}): the ${scheme} colour scheme applies`,
      (bg === "rgb(255, 255, 255)") === (scheme === "light"), bg);
    await again.page.addScriptTag({ content: axeSource });
    const axe = await again.page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ["violations"] });
      return r.violations.filter((v) => v.impact === "serious" || v.impact === "critical")
        .map((v) => `${v.id} (${v.impact}): ${v.nodes.length} nodes`);
    });
    check(`python:3.7-slim (${scheme}): axe-core finds no serious or critical violation`,
      axe.length === 0, axe);
    if (scheme === "dark")
      await again.page.screenshot({ path: `${outDir}/python-3.7-slim-1280-dark.png` });
    await again.page.close();
  }
}

async function hostilePage(browser) {
  for (const bypassCSP of [false, true]) {
    const how = bypassCSP ? "with the CSP bypassed" : "under its CSP";
    const { page, seen } = await open(browser, { bypassCSP });
    const resp = await page.goto(`${base}${hostilePath}`, { waitUntil: "load" });
    const f = await facts(page);
    check(`hostile page ${how}: 200`, resp.status() === 200, resp.status());
    check(`hostile page ${how}: no script element, no img, nothing ran`,
      f.scripts === 0 && f.imgs === 0 && f.ran === 0, f);
    check(`hostile page ${how}: the payloads are text on the page`,
      PAYLOADS.every((p) => f.text.includes(p)), PAYLOADS.filter((p) => !f.text.includes(p)));
    check(`hostile page ${how}: the labels are listed`,
      f.text.includes("org.opencontainers.image.title"), f.text.slice(0, 400));
    check(`hostile page ${how}: one segment per layer`,
      f.segments.length === f.platforms && f.segments.every((n, i) => n === f.layerCounts[i]),
      { segments: f.segments, layers: f.layerCounts });
    check(`hostile page ${how}: no console error`, seen.errors.length === 0, seen.errors);
    if (!bypassCSP)
      await page.screenshot({ path: `${outDir}/hostile-1280.png`, fullPage: true });
    await page.close();
  }
}

// Submits the page's form and waits until the browser has loaded PATH (after
// the 303): the HTTP status of that document. Polled rather than awaited as a
// navigation event: page.waitForNavigation() set up beside the click can miss
// a navigation that commits before its watcher is in place (a form answered
// from the cache in well under a millisecond) and then waits 30 s for one
// that never comes.
async function submitAndLand(page, path) {
  await page.click("button[type=submit]");
  await page.waitForFunction(
    (p) => location.pathname === p && document.readyState === "complete",
    { timeout: 30000, polling: 50 }, path);
  return page.evaluate(() => performance.getEntriesByType("navigation")[0].responseStatus);
}

async function homeForm(browser) {
  const { page, seen } = await open(browser, { width: 360 });
  await page.goto(`${base}/`, { waitUntil: "load" });
  await page.type("#ref", "python:3.7-slim");
  await submitAndLand(page, "/images/python/3.7-slim");
  check("home page: the form lands on the image's page",
    page.url() === `${base}/images/python/3.7-slim` && (await page.title()) === "python:3.7-slim - imgmeta",
    [page.url(), await page.title()]);
  check("home page: no console error", seen.errors.length === 0, seen.errors);
  // (chromium logs every 404 it loads as a console error: no such check here)
  await page.goto(`${base}/`, { waitUntil: "load" });
  await page.type("#ref", "python:3.7-nope");
  const status = await submitAndLand(page, "/images/python/3.7-nope");
  const said = await page.evaluate(() => document.querySelector("main").textContent);
  check("home page: a tag that does not exist gets a 404 page that says so, with the form",
    status === 404 && said.includes("does not exist (yet?)") &&
    (await page.$("#ref")) !== null, [status, said]);
  await page.close();
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // root in CI: chromium's sandbox needs user namespaces a container may not give
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"],
});
try {
  await imagePage(browser);
  await hostilePage(browser);
  await homeForm(browser);
} catch (e) {
  check("the browser checks ran to the end", false, String(e && e.stack || e));
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
