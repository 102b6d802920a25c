import { describe, expect, it } from "vitest";
import { agentsAtRisk, parseErrorRates } from "./agents";

// The shape of services/api/error_rate_schemas.py (ErrorRatePredictions).
const alert = (level: string | null, p: number | null) => ({
  alert_level: level, probability: p, expected_breach_date: level ? "2026-07-04" : null, threshold: 0.1,
  threshold_source: "default", current_rate: 0.08, baseline_rate: 0.01, calls_last_7d: 700, errors_last_7d: 40,
  trend_per_day: 0.02, failing_users_share: 0.1, calls_at_risk: 30, reason: "error rate rose from 1% to 8% in 3 days", drivers: [],
});
const body = {
  workspace: { id: "x", external_id: "acme" }, as_of_date: "2026-06-30", status: "ok", note: null, min_level: null,
  agents_in_workspace: 3, total: 3, alerting: 2, limit: 100, offset: 0,
  agents: [
    { agent: { id: "a1", external_id: "bot-1" }, status: "escalating", alert: alert("critical", 0.9), model_version: "1",
      forecast: [{ date: "2026-07-14", predicted_rate: 0.2, lower_80: 0.1, upper_80: 0.3, lower_95: 0.05, upper_95: 0.4, expected_calls: 100, p_breach_by: 0.9 }], history: [] },
    { agent: { id: "a2", external_id: null }, status: "ok", alert: alert("watch", 0.2), model_version: "1", forecast: [], history: [] },
    { agent: { id: "a3", external_id: "bot-3" }, status: "insufficient_volume", alert: alert(null, null), model_version: "1", forecast: [], history: [] },
  ],
};

describe("error rates", () => {
  it("reads each agent's alert and the forecast's last day", () => {
    const v = parseErrorRates(body)!;
    expect(v.alerting).toBe(2);
    expect(v.agents.map((a) => a.agent)).toEqual(["bot-1", "a2", "bot-3"]);
    expect(v.agents[0]).toMatchObject({ level: "critical", probability: 0.9, breachDate: "2026-07-04", currentRate: 0.08, calls: 700,
      horizon: { date: "2026-07-14", rate: 0.2, lower: 0.05, upper: 0.4 } });
    expect(v.agents[2]).toMatchObject({ level: null, status: "insufficient_volume", probability: null });
    expect(agentsAtRisk(v).map((a) => a.agent)).toEqual(["bot-1"]);
  });

  it("says when a workspace has no agents", () => {
    expect(parseErrorRates({ ...body, status: "no_agents", note: "no agent traffic", agents: [] })).toMatchObject({ status: "no_agents", note: "no agent traffic", agents: [] });
    expect(parseErrorRates({ detail: "x" })).toBeNull();
  });
});
