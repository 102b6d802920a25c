// End to end in Debian's Chromium: the dashboard served by `pae serve`, against a seeded database.
// Run by tests/web/test_dashboard_e2e.py, which seeds the platform, creates the keys and starts the server:
//   BASE_URL, KEY_A (covers WS_A and WS_A2), KEY_B (covers WS_B only), WS_A, OUT_DIR.
// Prints one JSON line of what it saw; exits 1 with the reason when a check fails.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { api, check, launch } from "./browser.mjs";

const { BASE_URL: BASE, KEY_A, KEY_B, WS_A, OUT_DIR = "test-output/e2e" } = process.env;
for (const [k, v] of Object.entries({ BASE_URL: BASE, KEY_A, KEY_B, WS_A })) check(v, `${k} is set`);
mkdirSync(OUT_DIR, { recursive: true });

const VIEWS = ["prediction-summary-cards", "consumption-forecast", "churn-risk-matrix", "growth-projections", "capacity-planning", "agent-error-alerts", "model-health"];
const ENDPOINTS = {
  "growth-projections": ["/api/analytics/predictions/growth", { metric: "mau", horizon_days: 30 }],
  "capacity-planning": ["/api/analytics/predictions/peak-usage", { granularity: "hourly" }],
  "agent-error-alerts": ["/api/analytics/predictions/error-rates", {}],
};
const fmt = (v) => (Math.abs(v) >= 100_000 ? new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 }).format(v)
  : Math.abs(v) >= 100 ? new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 }).format(v)
  : new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 }).format(v));
const seen = { views: {}, screenshots: [] };
const shot = async (target, name) => {
  const path = join(OUT_DIR, `${name}.png`);
  await target.screenshot({ path, ...(target.url ? { fullPage: true } : {}) });
  seen.screenshots.push(path);
};
const stateOf = (page, id) => page.getByTestId(id).getAttribute("data-state");

const browser = await launch();
const requests = [];
const problems = [];
try {
  // ---- a key for the workspace: every view renders what the API serves ----
  const ctx = await browser.newContext({ viewport: { width: 1400, height: 1000 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.on("request", (r) => requests.push(r.url()));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && !/Failed to load resource: the server responded with a status of (403|404|405)/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  const t0 = Date.now();
  await page.goto(`${BASE}/?workspace=${encodeURIComponent(WS_A)}`);
  await page.getByTestId("api-key-input").fill(KEY_A);
  await page.getByTestId("api-key-submit").click();
  await page.locator('[data-testid="card-credits"][data-state="ok"]').waitFor({ timeout: 15_000 });
  await page.locator('[data-testid="forecast-chart"] svg path').first().waitFor({ state: "attached" });
  seen.first_meaningful_paint_ms = Date.now() - t0;
  for (const id of VIEWS) {
    await page.waitForFunction((tid) => document.querySelector(`[data-testid="${tid}"]`)?.getAttribute("data-state") !== "loading", id, { timeout: 20_000 });
  }
  await page.waitForTimeout(300);
  await shot(page, "01-dashboard");

  // Consumption: the card shows the API's 30-day total; the breakdown its dimensions.
  const cons = (await api(BASE, KEY_A, "/api/analytics/predictions/consumption", { workspace_id: WS_A, days_ahead: 30 })).body;
  const total30 = cons.cumulative.length ? cons.cumulative[cons.cumulative.length - 1].predicted_value : cons.predictions.reduce((a, p) => a + p.predicted_value, 0);
  const cardValue = await page.getByTestId("card-credits-value").textContent();
  check(cardValue === fmt(total30), `credits card ${cardValue} = API ${fmt(total30)}`);
  const breakdown = await page.getByTestId("forecast-breakdown").textContent();
  for (const b of cons.breakdown) check(breakdown.includes(b.dimension), `breakdown lists ${b.dimension}`);
  seen.views["consumption-forecast"] = { state: await stateOf(page, "consumption-forecast"), card: cardValue, dimensions: cons.breakdown.length };

  // Churn: the counts and the riskiest user come from the API.
  const churn = (await api(BASE, KEY_A, "/api/analytics/predictions/churn", { workspace_id: WS_A, limit: 1000 })).body;
  const high = churn.users.filter((u) => u.churn_probability >= 0.7).length;
  check((await page.getByTestId("card-churn-high").textContent()).startsWith(`${high.toLocaleString("en-US")} `), `high-risk count ${high}`);
  const matrixText = await page.getByTestId("churn-risk-matrix").textContent();
  check(matrixText.includes(`${churn.total.toLocaleString("en-US")} scored users`), `matrix says ${churn.total} scored users`);
  const firstRow = page.locator('[data-testid="churn-table"] tbody tr[data-user-id]').first();
  check((await firstRow.getAttribute("data-user-id")) === churn.users[0].user_id, "first row is the riskiest user");
  check(await page.locator('[data-testid="churn-heatmap"] svg path').count() > 0, "heatmap drawn");
  seen.views["churn-risk-matrix"] = { state: await stateOf(page, "churn-risk-matrix"), users: churn.total, high };

  // Views whose endpoints may not exist yet: a number when they answer, a clear state when they do not.
  for (const [id, [path, params]] of Object.entries(ENDPOINTS)) {
    const r = await api(BASE, KEY_A, path, { workspace_id: WS_A, ...params });
    const state = await stateOf(page, id);
    const text = await page.getByTestId(id).textContent();
    if (r.status === 404 && r.body?.detail === "Not Found") check(state === "not_built" && /Not available yet/.test(text), `${id}: not built yet (${state})`);
    else if (r.status === 200 && r.body?.status !== "insufficient_data") check(state === "ok" && /\d/.test(text), `${id}: numbers from the API (${state})`);
    else check(["no_data", "insufficient", "error"].includes(state), `${id}: a state for HTTP ${r.status} (${state})`);
    check(state !== "loading", `${id} finished loading`);
    seen.views[id] = { state, http: r.status };
  }

  // Hover the forecast: a tooltip with the day's values.
  const chart = page.getByTestId("forecast-chart");
  const box = await chart.boundingBox();
  await page.mouse.move(box.x + box.width * 0.85, box.y + box.height * 0.5);
  const tooltip = page.locator(".pae-tooltip").filter({ hasText: "Forecast:" });
  await tooltip.waitFor({ state: "visible", timeout: 5000 });
  const tip = await tooltip.textContent();
  check(/Forecast: [\d,.]+[kKM]? credits/.test(tip) && /95%: [\d,.]+/.test(tip), `tooltip has values: ${tip}`);
  seen.tooltip = tip;
  await shot(page.getByTestId("consumption-forecast"), "02-consumption-forecast-tooltip");

  // Scenario controls: an overlay when what-if exists, else disabled with the reason.
  const whatIf = await api(BASE, KEY_A, "/api/analytics/predictions/what-if", {}, { method: "POST", body: JSON.stringify({ workspace_id: WS_A, base_scenario: "likely", adjustments: [], metrics: ["credits"], horizon_days: 30 }) });
  const controls = page.getByTestId("scenario-controls");
  if (whatIf.status === 404 || whatIf.status === 405) {
    await page.getByTestId("whatif-unavailable").waitFor();
    check(await controls.evaluate((el) => el.disabled), "scenario controls disabled");
    check(await page.getByTestId("scenario-usage").isDisabled(), "the usage slider is disabled");
    check((await page.getByTestId("whatif-unavailable").textContent()) === "what-if not available yet", "says what-if not available yet");
    seen.whatif = "not available yet (controls disabled)";
  } else {
    await page.waitForFunction(() => !document.querySelector('[data-testid="scenario-controls"]')?.disabled);
    const before = await page.locator('[data-testid="forecast-chart"] svg path').count();
    await page.getByTestId("scenario-usage").fill("30");
    await page.getByTestId("whatif-result").waitFor({ timeout: 10_000 });
    const after = await page.locator('[data-testid="forecast-chart"] svg path').count();
    check(after > before, `overlay drawn (${before} → ${after} paths)`);
    seen.whatif = await page.getByTestId("whatif-result").textContent();
    await shot(page.getByTestId("consumption-forecast"), "02b-consumption-whatif");
  }

  // Click a user: the detail with probability, reasons, actions and days until churn.
  await firstRow.click();
  const detail = page.getByTestId("churn-user-detail");
  await detail.waitFor();
  const top = churn.users[0];
  check((await page.getByTestId("detail-probability").textContent()) === `${(top.churn_probability * 100).toFixed(1)}%`, "detail probability");
  const reasons = await page.getByTestId("detail-reasons").textContent();
  const words = top.risk_factors.filter((f) => f.direction !== "state" && f.driver !== "state").map((f) => f.text);
  check(words.length === 0 || reasons.includes(words[0]), `detail gives the reason in words (${words[0]})`);
  if (top.state) check((await page.getByTestId("detail-state").textContent()) === top.state, "detail state");
  seen.detail = (await detail.textContent()).slice(0, 300);

  // Click a heatmap cell: the table keeps that cell's users only; clear the filter again.
  const cellLabel = page.locator('[data-testid="churn-heatmap"] svg text').filter({ hasText: /^\d+$/ }).first();
  const cellCount = Number(await cellLabel.textContent());
  const cb = await cellLabel.boundingBox();
  await page.mouse.click(cb.x + cb.width / 2, cb.y + cb.height / 2);
  await page.locator('[data-testid="churn-bulk-actions"] .chip').waitFor({ timeout: 5000 });
  const filtered = await page.locator('[data-testid="churn-table"] tbody tr[data-user-id]').count();
  check(filtered === Math.min(cellCount, 30) || filtered === cellCount, `heatmap cell filters the table to its ${cellCount} users (${filtered} rows)`);
  seen.heatmap_filter = { cell: cellCount, rows: filtered };
  await page.getByRole("button", { name: "Clear filter" }).click();

  // Sort by a factor, select two users, mark them as contacted (through the API) and export them.
  const factorHeader = page.locator('[data-testid="churn-table"] thead button.sort').nth(5);
  if (await factorHeader.count()) await factorHeader.click();
  await page.locator('[data-testid="churn-table"] tbody tr[data-user-id] input[type="checkbox"]').nth(0).check();
  await page.locator('[data-testid="churn-table"] tbody tr[data-user-id] input[type="checkbox"]').nth(1).check();
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("export-csv").click()]);
  const csvPath = join(OUT_DIR, "churn-export.csv");
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, "utf8").trim().split(/\r\n/);
  check(csv.length === 3 && csv[0].startsWith("user_id,user_external_id,churn_probability"), `CSV has a header and 2 rows (${csv.length} lines)`);
  await page.getByTestId("mark-contacted").click();
  await page.getByRole("status").filter({ hasText: "Marked 2 users as contacted." }).waitFor();
  const stored = (await api(BASE, KEY_A, "/api/analytics/predictions/churn/contacts", { workspace_id: WS_A })).body;
  check(stored.contacts.length === 2, `2 contacts stored (${stored.contacts.length})`);
  await page.locator('[data-testid="churn-table"] .badge--ok').first().waitFor();
  seen.contacts = stored.contacts.length;
  await shot(page.getByTestId("churn-risk-matrix"), "03-churn-risk-matrix-detail");
  for (const id of ["prediction-summary-cards", "growth-projections", "capacity-planning", "agent-error-alerts"]) {
    await page.getByTestId(id).scrollIntoViewIfNeeded();
    await shot(page.getByTestId(id), `04-${id}`);
  }

  // Model health: one row per kind the API reports (its monitor step), with the champion version and the alert
  // badge the API says; no kinds yet -> the no-data state with the reason.
  const health = await api(BASE, KEY_A, "/api/analytics/models/health", {});
  check(health.status === 200, `model health answers (HTTP ${health.status})`);
  const healthPanel = page.getByTestId("model-health");
  const healthState = await stateOf(page, "model-health");
  if (health.body.kinds.length === 0) {
    check(healthState === "no_data" && /not scored any prediction yet/.test(await healthPanel.textContent()), `model health: no data (${healthState})`);
  } else {
    check(healthState === "ok", `model health: ok (${healthState})`);
    check((await healthPanel.locator(".panel__subtitle").textContent()).includes(`Realised accuracy over ${health.body.window_days} days`), "model health subtitle gives the window");
    const rows = healthPanel.locator('[data-testid="model-health-kinds"] tbody tr');
    check(await rows.count() === health.body.kinds.length, `one row per kind (${await rows.count()} rows, ${health.body.kinds.length} kinds)`);
    for (const k of health.body.kinds) {
      const cells = await healthPanel.locator(`[data-testid="model-health-kinds"] tr[data-kind="${k.kind}"] td`).allTextContents();
      check(cells.length === 7, `model health row for ${k.kind}`);
      const champion = k.champion ? `v${k.champion.version}` : "–";
      const challenger = k.challenger ? `v${k.challenger.version}` : "–";
      check(cells[3] === `${champion} / ${challenger}`, `${k.kind}: champion/challenger ${cells[3]} = API ${champion} / ${challenger}`);
      check((cells[1] === "alert") === (k.alert === true), `${k.kind}: alert badge iff the API alerts (${cells[1]})`);
    }
  }
  seen.views["model-health"] = { state: healthState, kinds: health.body.kinds.map((k) => k.kind),
    champions: Object.fromEntries(health.body.kinds.map((k) => [k.kind, k.champion?.version ?? null])) };
  await healthPanel.scrollIntoViewIfNeeded();
  await shot(healthPanel, "07-model-health");

  // The key stays for the tab: a reload needs no key; the picker lists the key's workspaces.
  await page.reload();
  await page.locator('[data-testid="card-credits"][data-state="ok"]').waitFor({ timeout: 15_000 });
  // the list comes from its own request (/workspaces), which may still be in flight when the card is ready
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="workspace-picker"] option').length >= 2,
    null, { timeout: 15_000 }).catch(() => {});
  const options = await page.getByTestId("workspace-picker").locator("option").allTextContents();
  check(options.length >= 2, `picker lists the key's workspaces (${options})`);
  seen.picker = options;
  check(requests.every((u) => !u.includes(KEY_A)), "the key is never in a URL");
  await ctx.close();

  // ---- a key for another workspace: errors, not data ----
  const other = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  const p2 = await other.newPage();
  await p2.goto(`${BASE}/?workspace=${encodeURIComponent(WS_A)}`);
  await p2.getByTestId("api-key-input").fill(KEY_B);
  await p2.getByTestId("api-key-submit").click();
  await p2.locator('[data-testid="consumption-forecast"][data-state="error"]').waitFor({ timeout: 15_000 });
  await p2.locator('[data-testid="churn-risk-matrix"][data-state="error"]').waitFor({ timeout: 15_000 });
  const errText = await p2.getByTestId("consumption-forecast").textContent();
  check(/403/.test(errText) && /does not cover/.test(errText), `403 message shown: ${errText}`);
  check(await p2.locator('[data-testid="churn-table"]').count() === 0 && await p2.locator('[data-testid="forecast-chart"]').count() === 0, "no data drawn");
  check((await p2.getByTestId("card-credits").getAttribute("data-state")) === "error", "credits card in error");
  await shot(p2, "05-other-workspace-key");

  // ---- a key that does not exist: the key form again, with the reason ----
  const bad = await browser.newContext();
  const p3 = await bad.newPage();
  await p3.goto(`${BASE}/`);
  await p3.getByTestId("api-key-input").fill("pae_" + "x".repeat(43));
  await p3.getByTestId("api-key-submit").click();
  await p3.getByRole("alert").filter({ hasText: "refused" }).waitFor();
  await shot(p3, "06-invalid-key");
  await other.close();
  await bad.close();

  check(problems.length === 0, `no page errors: ${problems.join(" | ")}`);
  writeFileSync(join(OUT_DIR, "result.json"), JSON.stringify(seen, null, 2));
  console.log(JSON.stringify({ ok: true, ...seen }));
} catch (exc) {
  console.error(String(exc?.stack || exc));
  console.log(JSON.stringify({ ok: false, error: String(exc?.message || exc), problems, ...seen }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
