import { arr, isObj, num, pick, str, type Obj } from "./shapes";

// GET /api/analytics/predictions/peak-usage (services/api/routers/peak_usage.py, PeakUsageForecast):
// {workspace, as_of_date, time_zone, granularity, days_ahead, confidence_level, model_version,
//  metrics: {calls|credits: {daily: DailyPeak[], hourly: HourlyPoint[], week_peak, alerts: CapacityAlert[]}}}

export interface HourCell { day: string; hour: number; value: number; alert: boolean }
export interface DailyPeak {
  date: string;
  hour: number | null;
  hourUtc: number | null;
  value: number | null;
  lower: number | null;
  upper: number | null;
  need: number | null;
  limit: number | null;
  limitSource: string | null;
  alert: boolean;
  alertHours: number;
  firstAlert: string | null;
  topHours: { hour: number; probability: number }[];
}
export interface CapacityAlert { when: string; upper: number | null; limit: number | null; hoursAhead: number | null }

export interface CapacityView {
  asOfDate: string | null;
  timezone: string | null;
  metric: string;
  metrics: string[];
  confidenceLevel: number | null;
  modelVersion: string | null;
  hours: HourCell[];
  peaks: DailyPeak[];
  alerts: CapacityAlert[];
  weekPeak: { date: string; hour: number | null; value: number | null } | null;
}

/** "2026-07-01T09:00:00+02:00" → local day and hour as written (the API gives the workspace's own clock). */
function dayHour(ts: string | null): { day: string; hour: number } | null {
  if (!ts || ts.length < 13) return null;
  return { day: ts.slice(0, 10), hour: Number(ts.slice(11, 13)) };
}

export function parseCapacity(body: unknown, metric = "calls"): CapacityView | null {
  if (!isObj(body) || !isObj(body.metrics)) return null;
  const names = Object.keys(body.metrics);
  const name = names.includes(metric) ? metric : names[0];
  const m = (body.metrics as Obj)[name];
  if (!isObj(m)) return null;
  const hours = arr(m.hourly).flatMap((p) => {
    const at = dayHour(str(p.hour_local));
    const value = num(p.value);
    return at && value !== null ? [{ ...at, value, alert: p.alert === true }] : [];
  });
  const peaks = arr(m.daily).map((p) => ({
    date: String(p.day ?? "").slice(0, 10),
    hour: num(p.peak_hour_local),
    hourUtc: num(p.peak_hour_utc),
    value: num(p.peak_value),
    lower: num(p.peak_lower),
    upper: num(p.peak_upper),
    need: num(p.capacity_need),
    limit: num(p.capacity_limit),
    limitSource: str(p.limit_source),
    alert: p.alert === true,
    alertHours: num(p.alert_hours) ?? 0,
    firstAlert: str(p.first_alert_local),
    topHours: arr(p.top_hours).map((h) => ({ hour: num(h.hour_local) ?? 0, probability: num(h.probability) ?? 0 })),
  }));
  const alerts = arr(m.alerts).map((a) => ({
    when: str(a.hour_local) ?? "",
    upper: num(a.upper),
    limit: num(a.capacity_limit),
    hoursAhead: num(a.hours_ahead),
  }));
  const wp = isObj(m.week_peak) ? m.week_peak : null;
  return {
    asOfDate: str(body.as_of_date),
    timezone: str(pick(body, ["time_zone"])),
    metric: name,
    metrics: names,
    confidenceLevel: num(body.confidence_level),
    modelVersion: str(body.model_version),
    hours,
    peaks,
    alerts,
    weekPeak: wp ? { date: String(wp.date ?? ""), hour: num(wp.peak_hour_local), value: num(wp.peak_value) } : null,
  };
}

/** The next alert: the earliest alerted hour, local time ("2026-07-02 14:00"), or null. */
export function nextAlert(v: CapacityView): string | null {
  const first = [...v.alerts].sort((a, b) => a.when.localeCompare(b.when))[0]?.when
    ?? v.peaks.find((p) => p.alert)?.firstAlert
    ?? null;
  return first ? `${first.slice(0, 10)} ${first.slice(11, 16)}` : v.peaks.find((p) => p.alert)?.date ?? null;
}
