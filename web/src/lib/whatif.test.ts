import { describe, expect, it } from "vitest";
import { buildWhatIfRequest, NEUTRAL_CONTROLS, parseWhatIf, toPoints } from "./whatif";

const series = (base: number) => [
  { date: "2026-07-01", predicted_value: base, lower: base - 10, upper: base + 10 },
  { date: "2026-07-02", predicted_value: base + 1, lower: base - 9, upper: base + 11 },
];

describe("what-if request", () => {
  it("sends no adjustment for neutral controls (the baseline)", () => {
    expect(buildWhatIfRequest("acme", 30, NEUTRAL_CONTROLS)).toEqual({
      workspace_id: "acme", base_scenario: "likely", adjustments: [], metrics: ["credits"], horizon_days: 30,
    });
  });

  it("sends only what was changed", () => {
    const req = buildWhatIfRequest("acme", 14, { ...NEUTRAL_CONTROLS, usagePercent: 20, usageStart: "2026-07-01", priceDimension: "chat", priceMultiplier: 1.5 });
    expect(req.adjustments).toEqual([
      { type: "usage_change", percent: 20, start_date: "2026-07-01" },
      { type: "price", dimension: "chat", multiplier: 1.5 },
    ]);
  });
});

describe("what-if answer", () => {
  it("reads a list of metrics", () => {
    const r = parseWhatIf({ metrics: [{ metric: "credits", baseline: series(100), adjusted: series(120), difference: { value: 40 }, explanations: [{ text: "usage +20% adds 40 credits" }] }] });
    expect(r?.adjusted.map((p) => p.value)).toEqual([120, 121]);
    expect(r?.adjusted[0]).toMatchObject({ lower: 110, upper: 130 });
    expect(r?.difference).toBe(40);
    expect(r?.explanations).toEqual(["usage +20% adds 40 credits"]);
  });

  it("reads metrics keyed by name and computes the difference when absent", () => {
    const r = parseWhatIf({ results: { dau: { baseline: [], adjusted: [] }, credits: { baseline: { predictions: series(100) }, adjusted: { predictions: series(90) } } } });
    expect(r?.metric).toBe("credits");
    expect(r?.difference).toBe(-20);
  });

  it("returns null when nothing can be drawn", () => {
    expect(parseWhatIf({ detail: "x" })).toBeNull();
    expect(parseWhatIf(null)).toBeNull();
    expect(toPoints([{ ds: "2026-07-01T00:00:00", yhat: 3, yhat_lower: 1, yhat_upper: 5 }])).toEqual([{ date: "2026-07-01", value: 3, lower: 1, upper: 5 }]);
  });
});

describe("what-if answer as the API sends it", () => {
  it("reads the credits total (listed before the features) with its difference and explanations", () => {
    const pt = (v: number) => [{ date: "2026-07-01", value: v, lower: v - 5, upper: v + 5 }];
    const diff = (v: number) => ({ value: v, basis: "credits over 1 days", over_30_days: null, over_90_days: null, baseline_totals: [], adjusted_totals: [] });
    const explanation = { index: 0, type: "usage_change", credits_difference: 20, mau_difference: null, text: "usage +20%: +20 credits over 1 days" };
    const r = parseWhatIf({
      workspace: { id: "x", external_id: "acme" }, as_of_date: "2026-06-30", base_scenario: "likely", horizon_days: 1,
      metrics: [
        { metric: "credits", dimension: "total", unit: "credits", baseline: pt(100), adjusted: pt(120), difference: diff(20), milestones: [], explanations: [explanation] },
        { metric: "credits", dimension: "chat", unit: "credits", baseline: pt(50), adjusted: pt(60), difference: diff(10), milestones: [], explanations: [] },
      ],
      explanations: [explanation],
    });
    expect(r?.adjusted).toEqual([{ date: "2026-07-01", value: 120, lower: 115, upper: 125 }]);
    expect(r?.difference).toBe(20);
    expect(r?.explanations).toEqual(["usage +20%: +20 credits over 1 days"]);
  });
});
