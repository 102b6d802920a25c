import { describe, expect, it } from "vitest";
import { consumptionFixture } from "../test/fixtures";
import { band80, forecastOption, forecastRows, tooltipHtml } from "./forecastChart";

describe("80% band", () => {
  it("sits inside the 95% interval, each side shrunk by z(.90)/z(.975)", () => {
    const b = band80({ date: "d", days: 1, predicted_value: 100, lower: 60, upper: 160 }, 0.95);
    expect(b.approximate).toBe(true);
    expect(b.lower!).toBeCloseTo(100 - 40 * 0.6539, 2);
    expect(b.upper!).toBeCloseTo(100 + 60 * 0.6539, 2);
  });

  it("uses the API's own 80% bounds when served", () => {
    expect(band80({ date: "d", days: 1, predicted_value: 1, lower: 0, upper: 2, lower_80: 0.5, upper_80: 1.5 }, 0.95)).toEqual({ lower: 0.5, upper: 1.5, approximate: false });
  });
});

describe("forecast chart", () => {
  const c = consumptionFixture(10);
  const input = { historical: c.history, predictions: c.predictions, confidenceLevel: 0.95, asOfDate: c.as_of_date, label: "credits" };

  it("puts history and forecast on one date axis", () => {
    const rows = forecastRows(input);
    expect(rows).toHaveLength(70);
    expect(rows[59]).toMatchObject({ date: c.as_of_date, actual: expect.any(Number), forecast: null });
    expect(rows[60]).toMatchObject({ forecast: 100, lo95: 80, hi95: 130 });
  });

  it("draws bands, lines and the what-if overlay", () => {
    const plain = forecastOption(input) as { series: { name: string }[] };
    expect(plain.series.map((s) => s.name)).toEqual(["95% interval-base", "95% interval", "80% interval (approx.)-base", "80% interval (approx.)", "Actual", "Forecast"]);
    const adjusted = forecastOption({ ...input, adjusted: [{ date: c.predictions[0].date, value: 150, lower: 120, upper: 180 }] }) as { series: { name: string; data: (number | null)[] }[] };
    const overlay = adjusted.series.find((s) => s.name === "What-if")!;
    expect(overlay.data[60]).toBe(150);
  });

  it("writes the day's values in the tooltip", () => {
    const html = tooltipHtml(forecastRows(input)[60], 0.95, true);
    expect(html).toContain("Forecast: 100 credits");
    expect(html).toContain("95%: 80 – 130");
    expect(html).toContain("80% (approx.)");
  });
});
