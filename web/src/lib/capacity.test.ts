import { describe, expect, it } from "vitest";
import { nextAlert, parseCapacity } from "./capacity";

// The shape of services/api/routers/peak_usage.py (PeakUsageForecast).
const body = {
  workspace: { id: "x", external_id: "acme" },
  as_of_date: "2026-06-30",
  time_zone: "Europe/Paris",
  granularity: "hourly",
  days_ahead: 7,
  confidence_level: 0.95,
  model_version: "4",
  metrics: {
    calls: {
      daily: [{
        day: "2026-07-01", peak_hour_local: 14, peak_hour_utc: 12, top_hours: [{ hour_local: 14, probability: 0.6 }],
        peak_value: 120, peak_lower: 90, peak_upper: 150, capacity_need: 180, capacity_limit: 160, limit_source: "max_hour_28d",
        alert: true, alert_hours: 2, first_alert_local: "2026-07-01T13:00:00+02:00", first_alert_utc: "2026-07-01T11:00:00Z",
      }],
      hourly: [
        { hour_utc: "2026-07-01T12:00:00Z", hour_local: "2026-07-01T14:00:00+02:00", value: 120, lower: 90, upper: 150, lower_80: 100, upper_80: 140, capacity_limit: 160, alert: false },
        { hour_utc: "2026-07-01T13:00:00Z", hour_local: "2026-07-01T15:00:00+02:00", value: null, lower: null, upper: null, lower_80: null, upper_80: null, capacity_limit: 160, alert: false },
      ],
      week_peak: { date: "2026-07-01", peak_hour_local: 14, peak_value: 120, peak_lower: 90, peak_upper: 150 },
      alerts: [{ hour_utc: "2026-07-01T11:00:00Z", hour_local: "2026-07-01T13:00:00+02:00", upper: 170, capacity_limit: 160, limit_source: "max_hour_28d", hours_ahead: 35 }],
    },
    credits: { daily: [], hourly: [], week_peak: null, alerts: [] },
  },
};

describe("peak usage", () => {
  it("reads the hourly forecast in local time, the daily peaks and the alerts", () => {
    const v = parseCapacity(body)!;
    expect(v.metrics).toEqual(["calls", "credits"]);
    expect(v.timezone).toBe("Europe/Paris");
    expect(v.hours).toEqual([{ day: "2026-07-01", hour: 14, value: 120, alert: false }]);
    expect(v.peaks[0]).toMatchObject({ hour: 14, hourUtc: 12, value: 120, need: 180, limit: 160, alert: true, topHours: [{ hour: 14, probability: 0.6 }] });
    expect(v.weekPeak).toEqual({ date: "2026-07-01", hour: 14, value: 120 });
    expect(nextAlert(v)).toBe("2026-07-01 13:00");
  });

  it("switches metric, and has nothing to draw without metrics", () => {
    expect(parseCapacity(body, "credits")!.peaks).toEqual([]);
    expect(parseCapacity({ detail: "x" })).toBeNull();
  });
});
