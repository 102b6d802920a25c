// The dashboard's budget in Debian's Chromium, run by bench/dashboard.py against a seeded 1,000-workspace
// database: first meaningful paint (summary cards with numbers and the forecast drawn), and how the churn
// matrix of a 5,000-user workspace responds (load, sort, open a user, scroll, filter by a heatmap cell).
// Env: BASE_URL, KEY, WS, RUNS. Prints one JSON line.
import { api, check, launch } from "./browser.mjs";

const { BASE_URL: BASE, KEY, WS, RUNS = "3" } = process.env;
check(BASE && KEY && WS, "BASE_URL, KEY and WS are set");

// In the page before any script: keep the key for the tab (as after entering it once) and note when the
// first meaningful paint and the churn matrix happen, with long tasks.
const INIT = (key) => {
  sessionStorage.setItem("pae.apiKey", key);
  window.__marks = {};
  window.__long = [];
  new PerformanceObserver((l) => l.getEntries().forEach((e) => window.__long.push(e.duration))).observe({ type: "longtask", buffered: true });
  const mark = () => {
    const m = window.__marks;
    if (!m.fmp && document.querySelector('[data-testid="card-credits"][data-state="ok"]') && document.querySelector('[data-testid="forecast-chart"] svg path')) m.fmp = performance.now();
    if (!m.churn && document.querySelector('[data-testid="churn-table"] tbody tr[data-user-id]')) m.churn = performance.now();
    if (!m.settled && [...document.querySelectorAll("[data-state]")].every((e) => e.getAttribute("data-state") !== "loading") && m.fmp) m.settled = performance.now();
  };
  new MutationObserver(mark).observe(document, { subtree: true, childList: true, attributes: true });
};

async function timed(page, fn) {
  // The time from a user's action to the next painted frame after React has handled it.
  return page.evaluate(async (body) => {
    const t0 = performance.now();
    new Function(body)();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - t0;
  }, fn);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const browser = await launch();
const runs = [];
try {
  const total = (await api(BASE, KEY, "/api/analytics/predictions/churn", { workspace_id: WS, limit: 1 })).body.total;
  for (let i = 0; i < Number(RUNS); i++) {
    const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 } }); // a cold cache each run
    await ctx.addInitScript(INIT, KEY);
    const page = await ctx.newPage();
    await page.goto(`${BASE}/?workspace=${encodeURIComponent(WS)}`);
    await page.waitForFunction(() => window.__marks.fmp && window.__marks.churn && window.__marks.settled, null, { timeout: 60_000 });
    const marks = await page.evaluate(() => ({ ...window.__marks, fcp: performance.getEntriesByName("first-contentful-paint")[0]?.startTime ?? null, long: window.__long }));
    const shown = await page.locator('[data-testid="churn-risk-matrix"]').textContent();
    check(shown.includes(`${total.toLocaleString("en-US")} scored users`), `all ${total} users loaded`);
    const run = {
      fcp_ms: marks.fcp, first_meaningful_paint_ms: marks.fmp, churn_matrix_ms: marks.churn, all_views_settled_ms: marks.settled,
      long_tasks: marks.long.length, longest_task_ms: Math.max(0, ...marks.long),
      sort_ms: await timed(page, `document.querySelector('[data-testid="churn-table"] thead button.sort:nth-of-type(1)') && [...document.querySelectorAll('[data-testid="churn-table"] thead button.sort')].find((b) => b.textContent.startsWith("Churn probability")).click();`),
      sort_by_factor_ms: await timed(page, `[...document.querySelectorAll('[data-testid="churn-table"] thead button.sort')][5].click();`),
      open_user_ms: await timed(page, `document.querySelector('[data-testid="churn-table"] tbody tr[data-user-id]').click();`),
      select_all_ms: await timed(page, `document.querySelector('[data-testid="churn-table"] thead input[type="checkbox"]').click();`),
      scroll_to_end_ms: await timed(page, `const s = document.querySelector('[data-testid="churn-table"]'); s.scrollTop = s.scrollHeight;`),
    };
    run.rows_in_dom = await page.locator('[data-testid="churn-table"] tbody tr[data-user-id]').count();
    check(await page.getByTestId("churn-user-detail").count() === 1, "the detail opened");
    runs.push(run);
    await ctx.close();
  }
  const keys = Object.keys(runs[0]);
  const med = Object.fromEntries(keys.map((k) => [k, median(runs.map((r) => r[k]))]));
  console.log(JSON.stringify({ ok: true, users: total, runs, median: med }));
} catch (exc) {
  console.error(String(exc?.stack || exc));
  console.log(JSON.stringify({ ok: false, error: String(exc?.message || exc), runs }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
