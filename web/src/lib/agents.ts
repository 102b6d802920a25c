import { arr, isObj, num, str } from "./shapes";

// GET /api/analytics/predictions/error-rates (services/api/error_rate_schemas.py, ErrorRatePredictions):
// {workspace, as_of_date, status: ok|no_agents, note, agents_in_workspace, total, alerting, limit, offset,
//  agents: [{agent: {id, external_id}, status, alert: {alert_level, probability, expected_breach_date, threshold,
//            current_rate, baseline_rate, calls_last_7d, reason, drivers, ...}, forecast: [...], history: [...]}]}

export type AlertLevel = "watch" | "warning" | "critical";
export interface AgentAlert {
  agent: string;
  status: string | null;
  level: AlertLevel | null;
  probability: number | null;
  breachDate: string | null;
  threshold: number | null;
  currentRate: number | null;
  baselineRate: number | null;
  calls: number | null;
  reason: string | null;
  /** The forecast's last day: expected rate and its 95% interval. */
  horizon: { date: string; rate: number | null; lower: number | null; upper: number | null } | null;
}
export interface AgentErrorsView {
  asOfDate: string | null;
  status: string | null;
  note: string | null;
  inWorkspace: number | null;
  total: number | null;
  alerting: number | null;
  agents: AgentAlert[];
}

const LEVELS: AlertLevel[] = ["watch", "warning", "critical"];

function agentOf(a: Record<string, unknown>): AgentAlert {
  const ref = isObj(a.agent) ? a.agent : {};
  const alert = isObj(a.alert) ? a.alert : {};
  const level = str(alert.alert_level);
  const last = arr(a.forecast).at(-1);
  return {
    agent: str(ref.external_id) ?? str(ref.id) ?? "?",
    status: str(a.status),
    level: LEVELS.includes(level as AlertLevel) ? (level as AlertLevel) : null,
    probability: num(alert.probability),
    breachDate: str(alert.expected_breach_date)?.slice(0, 10) ?? null,
    threshold: num(alert.threshold),
    currentRate: num(alert.current_rate),
    baselineRate: num(alert.baseline_rate),
    calls: num(alert.calls_last_7d),
    reason: str(alert.reason),
    horizon: last ? { date: String(last.date ?? "").slice(0, 10), rate: num(last.predicted_rate), lower: num(last.lower_95), upper: num(last.upper_95) } : null,
  };
}

export function parseErrorRates(body: unknown): AgentErrorsView | null {
  if (!isObj(body) || !Array.isArray(body.agents)) return null;
  return {
    asOfDate: str(body.as_of_date)?.slice(0, 10) ?? null,
    status: str(body.status),
    note: str(body.note),
    inWorkspace: num(body.agents_in_workspace),
    total: num(body.total),
    alerting: num(body.alerting),
    agents: arr(body.agents).map(agentOf),
  };
}

export function levelRank(l: AlertLevel | null): number {
  return l ? LEVELS.indexOf(l) + 1 : 0;
}

/** Agents alerted at `warning` or above. */
export function agentsAtRisk(v: AgentErrorsView): AgentAlert[] {
  return v.agents.filter((a) => levelRank(a.level) >= 2);
}
