import { describe, expect, it } from "vitest";
import { user } from "../test/fixtures";
import { contributions, mainFactor, riskFactors, riskMatrix, toCsv } from "./churn";

describe("churn matrix", () => {
  it("counts users by risk decile and main factor, without the state entry", () => {
    const users = [user("a", 0.95), user("b", 0.91), user("c", 0.15), user("d", 0.5, { risk_factors: [] })];
    expect(riskFactors(users[0]).map((f) => f.driver)).toEqual(["recency", "activity_drop"]);
    expect(mainFactor(users[3])).toBe("none");
    const m = riskMatrix(users);
    expect(m.factors).toEqual(["recency", "none"]);
    expect(m.cells).toEqual([[1, 0, 1], [9, 0, 2], [5, 1, 1]]);
    expect(m.max).toBe(2);
    expect(contributions(users[0])).toEqual({ recency: 0.95, activity_drop: 0.475 });
  });

  it("stays a fixed-size grid for 5,000 users", () => {
    const many = Array.from({ length: 5000 }, (_, i) => user(`u${i}`, (i % 100) / 100));
    const t0 = performance.now();
    const m = riskMatrix(many);
    expect(performance.now() - t0).toBeLessThan(500);
    expect(m.cells.length).toBeLessThanOrEqual(10 * m.factors.length);
    expect(m.cells.reduce((a, c) => a + c[2], 0)).toBe(5000);
  });
});

describe("CSV export", () => {
  it("quotes what needs quoting and defuses formulas", () => {
    const u = user("=HYPERLINK(1)", 0.8, { recommended_actions: [{ action_id: "x", title: 'Call "now", please' }] });
    const csv = toCsv([u], new Map([[u.user_id, { user_id: u.user_id, user_external_id: null, contacted_at: "2026-07-01T10:00:00Z", prediction_date: "2026-06-30", note: null, contacted_by: "cs" }]]));
    const [header, row] = csv.trim().split("\r\n");
    expect(header.split(",")).toContain("days_until_churn");
    expect(row).toContain("'=HYPERLINK(1)");
    expect(row).toContain('"Call ""now"", please"');
    expect(row).toContain("0.8000,80.0,high,lapsing,9,Recency");
    expect(row.endsWith("2026-07-01T10:00:00Z")).toBe(true);
  });
});
