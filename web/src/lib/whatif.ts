// What-if scenarios (issue 13): POST /api/analytics/predictions/what-if with
//   {workspace_id, base_scenario, adjustments, metrics, horizon_days}
// answers, for each asked metric, the baseline and the adjusted series with intervals, the difference over the
// horizon, milestones before/after and an explanation per adjustment. The server's answer
// (services/api/what_if_schemas.py) is `{metrics: [{metric, dimension, baseline: [{date, value, lower, upper}],
// adjusted, difference: {value, over_30_days, ...}, explanations: [{text, ...}]}], explanations}`, the credits
// total first; `parseWhatIf` also reads other likely spellings. `buildWhatIfRequest` sends only the adjustments a
// person changed (none: the baseline itself).

export interface ScenarioControls {
  /** One-off change in usage from `usageStart`, percent (−50…+100). */
  usagePercent: number;
  usageStart: string | null;
  /** More or fewer new users per week, percent (−50…+50). */
  userGrowthPercent: number;
  /** Share of the users now at high churn risk who are retained (0…1). */
  retainHighRisk: number;
  /** Credit-price multiplier for one feature/service. */
  priceDimension: string | null;
  priceMultiplier: number;
}

export const NEUTRAL_CONTROLS: ScenarioControls = {
  usagePercent: 0,
  usageStart: null,
  userGrowthPercent: 0,
  retainHighRisk: 0,
  priceDimension: null,
  priceMultiplier: 1,
};

export interface WhatIfRequest {
  workspace_id: string;
  base_scenario: string;
  adjustments: Record<string, unknown>[];
  metrics: string[];
  horizon_days: number;
}

export function buildWhatIfRequest(workspaceId: string, horizonDays: number, c: ScenarioControls): WhatIfRequest {
  const adjustments: Record<string, unknown>[] = [];
  if (c.usagePercent !== 0) {
    adjustments.push({ type: "usage_change", percent: c.usagePercent, ...(c.usageStart ? { start_date: c.usageStart } : {}) });
  }
  if (c.userGrowthPercent !== 0) {
    adjustments.push({ type: "user_growth", percent_per_week: c.userGrowthPercent, ...(c.usageStart ? { start_date: c.usageStart } : {}) });
  }
  if (c.retainHighRisk > 0) adjustments.push({ type: "churn_retention", share: c.retainHighRisk });
  if (c.priceDimension && c.priceMultiplier !== 1) {
    adjustments.push({ type: "price", dimension: c.priceDimension, multiplier: c.priceMultiplier });
  }
  return { workspace_id: workspaceId, base_scenario: "likely", adjustments, metrics: ["credits"], horizon_days: horizonDays };
}

export interface SeriesPoint {
  date: string;
  value: number | null;
  lower: number | null;
  upper: number | null;
}

export interface WhatIfResult {
  metric: string;
  baseline: SeriesPoint[];
  adjusted: SeriesPoint[];
  /** Adjusted minus baseline over the horizon, when the API gives it (else computed from the series). */
  difference: number | null;
  explanations: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);
const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
const first = (o: Obj, keys: string[]): unknown => keys.map((k) => o[k]).find((v) => v !== undefined);

export function toPoints(raw: unknown): SeriesPoint[] {
  let arr: unknown = raw;
  if (isObj(raw)) arr = first(raw, ["predictions", "series", "points", "values", "total", "data"]);
  if (!Array.isArray(arr)) return [];
  return arr.filter(isObj).flatMap((p) => {
    const date = first(p, ["date", "ds", "prediction_date", "day"]);
    if (typeof date !== "string") return [];
    const interval = isObj(p.interval) ? p.interval : isObj(p.intervals) ? p.intervals : {};
    return [{
      date: date.slice(0, 10),
      value: num(first(p, ["predicted_value", "value", "yhat", "mean", "median"])),
      lower: num(first(p, ["lower", "confidence_lower", "lo", "lower_95", "yhat_lower"]) ?? first(interval, ["lower", "lo"])),
      upper: num(first(p, ["upper", "confidence_upper", "hi", "upper_95", "yhat_upper"]) ?? first(interval, ["upper", "hi"])),
    }];
  });
}

function metricEntries(body: Obj): [string, Obj][] {
  const container = first(body, ["metrics", "results", "impact", "predictions"]);
  if (Array.isArray(container)) {
    return container.filter(isObj).map((m, i) => [String(first(m, ["metric", "target_metric", "name"]) ?? i), m]);
  }
  if (isObj(container)) return Object.entries(container).filter((e): e is [string, Obj] => isObj(e[1]));
  if ("baseline" in body && "adjusted" in body) return [[String(body.metric ?? "credits"), body]];
  return [];
}

function explanationsOf(m: Obj, body: Obj): string[] {
  const raw = first(m, ["explanations", "explanation", "contributions"]) ?? first(body, ["explanations", "explanation", "contributions"]);
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  return list.flatMap((e) => {
    if (typeof e === "string") return [e];
    if (isObj(e)) {
      const text = first(e, ["text", "explanation", "description", "summary"]);
      if (typeof text === "string") return [text];
    }
    return [];
  });
}

function differenceOf(m: Obj, baseline: SeriesPoint[], adjusted: SeriesPoint[]): number | null {
  const d = first(m, ["difference", "delta", "impact", "change"]);
  if (num(d) !== null) return num(d);
  if (isObj(d)) {
    const v = num(first(d, ["value", "total", "credits", "absolute", "horizon"]));
    if (v !== null) return v;
  }
  if (!baseline.length || baseline.length !== adjusted.length) return null;
  const sum = (s: SeriesPoint[]) => s.reduce((a, p) => a + (p.value ?? 0), 0);
  return sum(adjusted) - sum(baseline);
}

/** The credits (total) result of a what-if answer; `null` when it has no series we can draw. */
export function parseWhatIf(body: unknown, metric = "credits"): WhatIfResult | null {
  if (!isObj(body)) return null;
  const entries = metricEntries(body);
  const entry = entries.find(([name]) => name === metric || name === `${metric}_total` || name === "total") ?? entries[0];
  if (!entry) return null;
  const [name, m] = entry;
  const baseline = toPoints(m.baseline);
  const adjusted = toPoints(m.adjusted ?? m.scenario);
  if (!adjusted.length) return null;
  return { metric: name, baseline, adjusted, difference: differenceOf(m, baseline, adjusted), explanations: explanationsOf(m, body) };
}
