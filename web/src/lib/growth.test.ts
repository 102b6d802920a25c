import { describe, expect, it } from "vitest";
import { classify, insufficientCounts } from "./api";
import { parseGrowth, projectedChange } from "./growth";

// The shape of services/api/growth_schemas.py (GrowthProjection).
const body = {
  workspace: { id: "x", external_id: "acme" }, metric: "mau", status: "projected", reason: null, counts: null,
  as_of_date: "2026-06-30", model_version: "2", horizon_days: 2, current_value: 100,
  history: [{ date: "2026-06-30", value: 100, dau: 20, wau: 60, mau: 100, new_users: 1, returning_users: 19, reactivated_users: 0, lost_users: 1 }],
  projection: [
    { date: "2026-07-01", worst: 95, likely: 101, best: 106, lower_80: 95, upper_80: 106, lower_95: 90, upper_95: 110 },
    { date: "2026-07-02", worst: 94, likely: 110, best: 120, lower_80: 94, upper_80: 120, lower_95: 88, upper_95: 125 },
  ],
  milestones: [{ threshold: 150, kind: "round", probability: 0.4, date_p10: "2026-08-01", date_p50: null, date_p90: null, horizon_days: 90 }],
  goals: [{ goal_id: "g", target_value: 200, due_date: "2026-12-31", note: "board goal", status: "projected", current_value: 100,
    probability_met: 0.3, probability_on_due_date: 0.25, value_p10: 120, value_p50: 160, value_p90: 210, required_growth_30d: 0.12,
    projected_growth_30d: 0.08, realised_value: null, met: null, milestone: null }],
};

describe("growth", () => {
  it("reads scenarios, bands, milestones and goals", () => {
    const v = parseGrowth(body, "mau")!;
    expect(v.scenarios.likely.map((p) => p.value)).toEqual([101, 110]);
    expect(v.scenarios.worst[1].value).toBe(94);
    expect(v.band[0]).toEqual({ date: "2026-07-01", lo80: 95, hi80: 106, lo95: 90, hi95: 110 });
    expect(v.milestones[0]).toMatchObject({ threshold: 150, p10: "2026-08-01", p50: null, probability: 0.4 });
    expect(v.goals[0]).toMatchObject({ target: 200, due: "2026-12-31", probability: 0.3, projected: 160, requiredGrowth: 0.12 });
    expect(projectedChange(v)).toEqual({ from: 100, to: 110, change: 0.10000000000000009 });
  });

  it("treats insufficient data as a state with the counts", () => {
    const thin = { ...body, status: "insufficient_data", reason: "47 days of history (56 needed)", projection: [],
      counts: { history_days: 47, active_users: 12, users_ever: 30, dau: 3 } };
    const err = classify(200, thin);
    expect(err.kind).toBe("insufficient");
    expect(err.message).toBe("47 days of history (56 needed)");
    expect(insufficientCounts(thin)).toEqual({ history_days: 47, active_users: 12, users_ever: 30, dau: 3 });
    expect(parseGrowth({ ...body, projection: [] }, "mau")).toBeNull();
  });
});
