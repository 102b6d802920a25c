import type { ChartOption } from "../components/charts/echarts";
import { fmtDate, fmtPercent } from "./format";
import { arr, isObj, num, str, type Obj } from "./shapes";

// GET /api/analytics/models/health (services/api/model_health_schemas.py, ModelHealth):
// {as_of_date, window_days, kinds: [{kind, prediction_type, model_name, alert, champion: {version, created_at,
//  training_data_end, promised: {metric: value}} | null, challenger, realised: [{target_metric, horizon_bucket, n,
//  wape, error_vs_seasonal_naive, coverage, peak_hour_hit_rate}], daily: [{scored_date, n, wape, coverage}],
//  outcomes: [{target_metric, as_of_date, n, auc, brier, calibration_in_the_large, precision, recall, ...}],
//  alerts: [{measure, target_metric, promised_metric, realised, promised, n, window_days, margin, status}],
//  ab_comparison: {run_date, metric, verdict, diff, ci_low, ci_high, champion_version, challenger_version} | null}]}

export interface ModelRef { version: string; promised: Record<string, number> }
export interface RealisedRow {
  metric: string;
  bucket: string;
  n: number;
  wape: number | null;
  vsNaive: number | null;
  coverage: number | null;
  peakHourHit: number | null;
}
export interface OutcomeRow {
  metric: string;
  asOfDate: string;
  n: number;
  auc: number | null;
  brier: number | null;
  calibration: number | null;
  precision: number | null;
  recall: number | null;
}
export interface HealthAlert { measure: string; realised: number | null; promised: number | null; status: string }
export interface AbView { runDate: string; verdict: string; diff: number | null; ciLow: number | null; ciHigh: number | null; challenger: string | null }
export interface KindHealthView {
  kind: string;
  alert: boolean;
  champion: ModelRef | null;
  challenger: ModelRef | null;
  realised: RealisedRow[];
  daily: { date: string; wape: number | null; coverage: number | null }[];
  outcomes: OutcomeRow[];
  alerts: HealthAlert[];
  ab: AbView | null;
}
export interface ModelHealthView { asOfDate: string | null; windowDays: number; kinds: KindHealthView[] }

const KIND_LABELS: Record<string, string> = {
  consumption: "Credit consumption",
  churn: "Churn",
  growth: "Growth",
  peak_usage: "Peak usage",
  agent_errors: "Agent error rates",
};
export const kindLabel = (kind: string) => KIND_LABELS[kind] ?? kind.replace(/_/g, " ");

function model(v: unknown): ModelRef | null {
  if (!isObj(v) || str(v.version) === null) return null;
  const promised: Record<string, number> = {};
  if (isObj(v.promised)) for (const [k, x] of Object.entries(v.promised)) if (num(x) !== null) promised[k] = x as number;
  return { version: str(v.version)!, promised };
}

function kindOf(k: Obj): KindHealthView {
  const ab = isObj(k.ab_comparison) ? k.ab_comparison : null;
  return {
    kind: str(k.kind) ?? "?",
    alert: k.alert === true,
    champion: model(k.champion),
    challenger: model(k.challenger),
    realised: arr(k.realised).map((r) => ({
      metric: str(r.target_metric) ?? "?", bucket: str(r.horizon_bucket) ?? "?", n: num(r.n) ?? 0, wape: num(r.wape),
      vsNaive: num(r.error_vs_seasonal_naive), coverage: num(r.coverage), peakHourHit: num(r.peak_hour_hit_rate),
    })),
    daily: arr(k.daily).map((d) => ({ date: str(d.scored_date) ?? "", wape: num(d.wape), coverage: num(d.coverage) })),
    outcomes: arr(k.outcomes).map((o) => ({
      metric: str(o.target_metric) ?? "?", asOfDate: str(o.as_of_date) ?? "", n: num(o.n) ?? 0, auc: num(o.auc),
      brier: num(o.brier), calibration: num(o.calibration_in_the_large), precision: num(o.precision), recall: num(o.recall),
    })),
    alerts: arr(k.alerts).map((a) => ({ measure: str(a.measure) ?? "?", realised: num(a.realised), promised: num(a.promised), status: str(a.status) ?? "no_data" })),
    ab: ab && str(ab.run_date) ? {
      runDate: str(ab.run_date)!, verdict: str(ab.verdict) ?? "?", diff: num(ab.diff), ciLow: num(ab.ci_low), ciHigh: num(ab.ci_high),
      challenger: str(ab.challenger_version),
    } : null,
  };
}

/** The answer as the view reads it; null when it is not a model-health answer. */
export function parseModelHealth(body: unknown): ModelHealthView | null {
  if (!isObj(body) || !Array.isArray(body.kinds)) return null;
  return { asOfDate: str(body.as_of_date), windowDays: num(body.window_days) ?? 14, kinds: arr(body.kinds).map(kindOf) };
}

/** The kind's headline: the first alert's realised figure against its promise, e.g. "WAPE 30% vs 10% promised". */
export function headline(k: KindHealthView): string {
  const a = k.alerts.find((x) => x.realised !== null) ?? k.alerts[0];
  if (!a || a.realised === null) return "no realised accuracy yet";
  const pct = ["wape", "mape"].includes(a.measure);
  const f = (v: number | null) => (v === null ? "–" : pct ? fmtPercent(v, 1) : v.toFixed(3));
  return `${a.measure.toUpperCase()} ${f(a.realised)}${a.promised !== null ? ` vs ${f(a.promised)} promised` : ""}`;
}

/** Pooled WAPE per scored day, one line per kind that has daily values. */
export function healthOption(view: ModelHealthView): ChartOption {
  const kinds = view.kinds.filter((k) => k.daily.some((d) => d.wape !== null));
  const dates = [...new Set(kinds.flatMap((k) => k.daily.map((d) => d.date)))].sort();
  return {
    animation: false,
    grid: { left: 48, right: 16, top: 36, bottom: 28 },
    legend: { top: 0, data: kinds.map((k) => kindLabel(k.kind)), textStyle: { fontSize: 11 } },
    tooltip: { trigger: "axis", className: "pae-tooltip", valueFormatter: (v: unknown) => fmtPercent(v as number, 1) },
    xAxis: { type: "category", data: dates, axisLabel: { formatter: (d: string) => fmtDate(d).replace(/, \d{4}$/, "") } },
    yAxis: { type: "value", name: "WAPE", min: 0, axisLabel: { formatter: (v: number) => fmtPercent(v) } },
    series: kinds.map((k) => {
      const m = new Map(k.daily.map((d) => [d.date, d.wape]));
      return { name: kindLabel(k.kind), type: "line", data: dates.map((d) => m.get(d) ?? null), connectNulls: false };
    }),
  };
}
