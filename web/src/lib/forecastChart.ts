import type { ChartOption } from "../components/charts/echarts";
import { fmtDate, fmtNumber } from "./format";
import type { ForecastPoint, HistoryPoint } from "./types";
import type { SeriesPoint } from "./whatif";

/** z(0.90) / z(0.975): an 80% half-width from a 95% one under roughly normal errors, per side. */
export const Z80_OVER_Z95 = 1.2815515655446004 / 1.959963984540054;

export interface Band {
  lower: number | null;
  upper: number | null;
}

/**
 * The 80% band of a forecast point: the API's own when it serves one, else each side of the 95% interval
 * shrunk by z(0.90)/z(0.975) around the point forecast (`approximate: true`), which is what the chart's legend
 * then says.
 */
export function band80(p: ForecastPoint, level: number | null): Band & { approximate: boolean } {
  if (p.lower_80 != null && p.upper_80 != null) return { lower: p.lower_80, upper: p.upper_80, approximate: false };
  if (p.predicted_value == null || p.lower == null || p.upper == null) return { lower: null, upper: null, approximate: true };
  if (level !== null && Math.abs(level - 0.8) < 1e-9) return { lower: p.lower, upper: p.upper, approximate: false };
  const y = p.predicted_value;
  return { lower: y - (y - p.lower) * Z80_OVER_Z95, upper: y + (p.upper - y) * Z80_OVER_Z95, approximate: true };
}

export interface ForecastChartInput {
  historical: HistoryPoint[];
  predictions: ForecastPoint[];
  confidenceLevel: number | null;
  asOfDate: string;
  label: string;
  adjusted?: SeriesPoint[] | null;
}

interface Row {
  date: string;
  actual: number | null;
  forecast: number | null;
  lo95: number | null;
  hi95: number | null;
  lo80: number | null;
  hi80: number | null;
  adjusted: number | null;
  adjLo: number | null;
  adjHi: number | null;
}

export function forecastRows({ historical, predictions, confidenceLevel, adjusted }: ForecastChartInput): Row[] {
  const rows = new Map<string, Row>();
  const row = (date: string): Row => {
    let r = rows.get(date);
    if (!r) {
      r = { date, actual: null, forecast: null, lo95: null, hi95: null, lo80: null, hi80: null, adjusted: null, adjLo: null, adjHi: null };
      rows.set(date, r);
    }
    return r;
  };
  historical.forEach((h) => (row(h.date).actual = h.value));
  predictions.forEach((p) => {
    const r = row(p.date);
    const b80 = band80(p, confidenceLevel);
    Object.assign(r, { forecast: p.predicted_value, lo95: p.lower, hi95: p.upper, lo80: b80.lower, hi80: b80.upper });
  });
  (adjusted ?? []).forEach((p) => Object.assign(row(p.date), { adjusted: p.value, adjLo: p.lower, adjHi: p.upper }));
  return [...rows.values()].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : 0));
}

const diff = (hi: number | null, lo: number | null) => (hi == null || lo == null ? null : Math.max(0, hi - lo));

export function tooltipHtml(r: Row, level: number | null, approx80: boolean): string {
  const pct = Math.round((level ?? 0.95) * 100);
  const lines = [`<strong>${fmtDate(r.date)}</strong>`];
  if (r.actual != null) lines.push(`Actual: ${fmtNumber(r.actual)} credits`);
  if (r.forecast != null) {
    lines.push(`Forecast: ${fmtNumber(r.forecast)} credits`);
    if (r.lo80 != null) lines.push(`80%${approx80 ? " (approx.)" : ""}: ${fmtNumber(r.lo80)} – ${fmtNumber(r.hi80)}`);
    if (r.lo95 != null) lines.push(`${pct}%: ${fmtNumber(r.lo95)} – ${fmtNumber(r.hi95)}`);
  }
  if (r.adjusted != null) lines.push(`What-if: ${fmtNumber(r.adjusted)} credits`);
  return lines.join("<br/>");
}

const BLUE = "#2563eb";

export function forecastOption(input: ForecastChartInput): ChartOption {
  const rows = forecastRows(input);
  const dates = rows.map((r) => r.date);
  const approx80 = input.predictions.some((p) => band80(p, input.confidenceLevel).approximate);
  const pct = Math.round((input.confidenceLevel ?? 0.95) * 100);
  // The forecast line starts at the last actual value, so history and forecast join.
  const lastActual = [...rows].reverse().find((r) => r.actual != null && r.forecast == null);
  const forecastLine = rows.map((r) => (r.forecast != null ? r.forecast : r === lastActual ? r.actual : null));
  const hasAdjusted = rows.some((r) => r.adjusted != null);
  const band = (name: string, lo: (r: Row) => number | null, hi: (r: Row) => number | null, color: string, stack: string) => [
    { name: `${name}-base`, type: "line", stack, data: rows.map(lo), lineStyle: { opacity: 0 }, symbol: "none", silent: true, tooltip: { show: false } },
    { name, type: "line", stack, data: rows.map((r) => diff(hi(r), lo(r))), lineStyle: { opacity: 0 }, symbol: "none", areaStyle: { color }, itemStyle: { color }, silent: true },
  ];
  const series: unknown[] = [
    ...band(`${pct}% interval`, (r) => r.lo95, (r) => r.hi95, "rgba(37,99,235,0.14)", "b95"),
    ...band(approx80 ? "80% interval (approx.)" : "80% interval", (r) => r.lo80, (r) => r.hi80, "rgba(37,99,235,0.22)", "b80"),
    { name: "Actual", type: "line", data: rows.map((r) => r.actual), symbol: "none", lineStyle: { color: "#111827", width: 1.5 }, itemStyle: { color: "#111827" } },
    {
      name: "Forecast", type: "line", data: forecastLine, symbol: "none", lineStyle: { color: BLUE, width: 2 }, itemStyle: { color: BLUE },
      markLine: { symbol: "none", silent: true, lineStyle: { color: "#9ca3af", type: "dashed" }, label: { formatter: "as of" }, data: [{ xAxis: input.asOfDate }] },
    },
  ];
  if (hasAdjusted) {
    series.push(...band("What-if interval", (r) => r.adjLo, (r) => r.adjHi, "rgba(234,88,12,0.12)", "badj"));
    series.push({ name: "What-if", type: "line", data: rows.map((r) => r.adjusted), symbol: "none", lineStyle: { color: "#ea580c", width: 2, type: "dashed" }, itemStyle: { color: "#ea580c" } });
  }
  const legend = ["Actual", "Forecast", `${pct}% interval`, approx80 ? "80% interval (approx.)" : "80% interval", ...(hasAdjusted ? ["What-if"] : [])];
  return {
    animation: false,
    grid: { left: 56, right: 16, top: 36, bottom: 28 },
    legend: { data: legend, top: 0, textStyle: { fontSize: 11 } },
    tooltip: {
      trigger: "axis",
      className: "pae-tooltip",
      axisPointer: { type: "line" },
      formatter: (params: unknown) => {
        const list = Array.isArray(params) ? params : [params];
        const idx = (list[0] as { dataIndex?: number })?.dataIndex ?? 0;
        return tooltipHtml(rows[idx], input.confidenceLevel, approx80);
      },
    },
    xAxis: { type: "category", data: dates, boundaryGap: false, axisLabel: { formatter: (d: string) => fmtDate(d).replace(/, \d{4}$/, "") } },
    yAxis: { type: "value", name: input.label, nameTextStyle: { align: "left" }, axisLabel: { formatter: (v: number) => fmtNumber(v) } },
    series,
  };
}
