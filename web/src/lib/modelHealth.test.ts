import { describe, expect, it } from "vitest";
import { healthBody } from "../test/modelHealthFixture";
import { headline, healthOption, parseModelHealth } from "./modelHealth";

describe("model health", () => {
  it("reads each kind's models, realised accuracy, outcomes, alerts and A/B", () => {
    const v = parseModelHealth(healthBody)!;
    expect(v.asOfDate).toBe("2026-05-20");
    expect(v.kinds.map((k) => k.kind)).toEqual(["consumption", "churn"]);
    const [c, churn] = v.kinds;
    expect(c).toMatchObject({ alert: true, champion: { version: "2", promised: { holdout_Ensemble_pooled_wape: 0.1 } }, challenger: { version: "3" } });
    expect(c.realised[0]).toMatchObject({ metric: "credits", bucket: "1d", n: 6, wape: 0.3, vsNaive: 1.2, coverage: 0.5, peakHourHit: null });
    expect(c.ab).toMatchObject({ verdict: "no_difference", diff: -0.1, challenger: "3" });
    expect(churn.outcomes[0]).toMatchObject({ metric: "churned", auc: 0.5, brier: 0.3375, calibration: -0.025, precision: 0.5 });
    expect(headline(c)).toBe("WAPE 30.0% vs 10.0% promised");
    expect(headline(churn)).toBe("BRIER 0.338 vs 0.200 promised");
  });

  it("charts pooled WAPE per day for the kinds that have it, and rejects other answers", () => {
    const option = healthOption(parseModelHealth(healthBody)!) as { series: { name: string; data: (number | null)[] }[]; xAxis: { data: string[] } };
    expect(option.series.map((s) => s.name)).toEqual(["Credit consumption"]);
    expect(option.xAxis.data).toEqual(["2026-05-19", "2026-05-20"]);
    expect(option.series[0].data).toEqual([0.25, 0.35]);
    expect(parseModelHealth({ detail: "Not Found" })).toBeNull();
    expect(headline({ ...parseModelHealth(healthBody)!.kinds[0], alerts: [] })).toBe("no realised accuracy yet");
  });
});
