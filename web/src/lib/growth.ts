import { arr, isObj, num, str } from "./shapes";
import type { SeriesPoint } from "./whatif";

// GET /api/analytics/predictions/growth (services/api/growth_schemas.py, GrowthProjection):
// {workspace, metric, status: projected|insufficient_data, reason, counts, as_of_date, model_version, horizon_days,
//  current_value, history: [{date, value, dau, wau, mau, new_users, ...}],
//  projection: [{date, worst, likely, best, lower_80, upper_80, lower_95, upper_95}],
//  milestones: [{threshold, kind, probability, date_p10, date_p50, date_p90}],
//  goals: [{target_value, due_date, note, status, probability_met, value_p50, required_growth_30d, projected_growth_30d, ...}]}
// An insufficient_data answer never gets here: the client turns it into that state, with its counts.

export interface GrowthBand { date: string; lo80: number | null; hi80: number | null; lo95: number | null; hi95: number | null }
export interface Milestone { threshold: number; kind: string; p10: string | null; p50: string | null; p90: string | null; probability: number | null }
export interface Goal {
  target: number;
  due: string | null;
  status: string | null;
  probability: number | null;
  projected: number | null;
  requiredGrowth: number | null;
  projectedGrowth: number | null;
  note: string | null;
}

export interface GrowthView {
  metric: string;
  asOfDate: string | null;
  modelVersion: string | null;
  currentValue: number | null;
  history: SeriesPoint[];
  scenarios: Record<string, SeriesPoint[]>;
  band: GrowthBand[];
  milestones: Milestone[];
  goals: Goal[];
}

const day = (v: unknown) => (typeof v === "string" ? v.slice(0, 10) : null);

export function parseGrowth(body: unknown, metric: string): GrowthView | null {
  if (!isObj(body) || !Array.isArray(body.projection)) return null;
  const projection = arr(body.projection).filter((p) => day(p.date));
  if (!projection.length) return null;
  const scenario = (k: string): SeriesPoint[] => projection.map((p) => ({ date: day(p.date)!, value: num(p[k]), lower: null, upper: null }));
  return {
    metric: str(body.metric) ?? metric,
    asOfDate: day(body.as_of_date),
    modelVersion: str(body.model_version),
    currentValue: num(body.current_value),
    history: arr(body.history).flatMap((h) => (day(h.date) ? [{ date: day(h.date)!, value: num(h.value), lower: null, upper: null }] : [])),
    scenarios: { worst: scenario("worst"), likely: scenario("likely"), best: scenario("best") },
    band: projection.map((p) => ({ date: day(p.date)!, lo80: num(p.lower_80), hi80: num(p.upper_80), lo95: num(p.lower_95), hi95: num(p.upper_95) })),
    milestones: arr(body.milestones).map((m) => ({
      threshold: num(m.threshold) ?? 0, kind: str(m.kind) ?? "round",
      p10: day(m.date_p10), p50: day(m.date_p50), p90: day(m.date_p90), probability: num(m.probability),
    })),
    goals: arr(body.goals).map((g) => ({
      target: num(g.target_value) ?? 0, due: day(g.due_date), status: str(g.status), probability: num(g.probability_met),
      projected: num(g.value_p50), requiredGrowth: num(g.required_growth_30d), projectedGrowth: num(g.projected_growth_30d),
      note: str(g.note),
    })),
  };
}

/** The likely scenario's change from today's value to the horizon's last day. */
export function projectedChange(v: GrowthView): { from: number; to: number; change: number } | null {
  const likely = v.scenarios.likely ?? [];
  const to = likely[likely.length - 1]?.value;
  const from = v.currentValue ?? v.history[v.history.length - 1]?.value;
  if (to == null || from == null || from === 0) return null;
  return { from, to, change: to / from - 1 };
}
