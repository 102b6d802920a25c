import { useMemo } from "react";
import { nextAlert, type CapacityView } from "../../lib/capacity";
import { fmtDate, fmtNumber, fmtPercent } from "../../lib/format";
import type { Resource } from "../../lib/resource";
import type { ChartOption } from "../charts/echarts";
import { EChart } from "../charts/EChart";
import { Panel, ViewState } from "../ViewState";

const HOURS = Array.from({ length: 24 }, (_, h) => `${String(h).padStart(2, "0")}:00`);
const short = (d: string) => fmtDate(d).replace(/, \d{4}$/, "");

/** Hour of day × day, coloured by the forecast; alerted hours outlined. */
export function hourDayOption(view: CapacityView): ChartOption {
  const days = [...new Set(view.hours.map((c) => c.day))].sort();
  const max = Math.max(1, ...view.hours.map((c) => c.value));
  const cell = (c: (typeof view.hours)[number]) => ({
    value: [c.hour, days.indexOf(c.day), c.value],
    itemStyle: c.alert ? { borderColor: "#b91c1c", borderWidth: 2 } : undefined,
  });
  return {
    animation: false,
    grid: { left: 64, right: 12, top: 8, bottom: 28 },
    tooltip: {
      className: "pae-tooltip",
      formatter: (p: { value: [number, number, number] }) => `${fmtDate(days[p.value[1]])} ${HOURS[p.value[0]]}: <strong>${fmtNumber(p.value[2])}</strong> ${view.metric}`,
    },
    xAxis: { type: "category", data: HOURS, splitArea: { show: true }, axisLabel: { interval: 2 } },
    yAxis: { type: "category", data: days.map(short), splitArea: { show: true }, inverse: true },
    visualMap: { show: false, min: 0, max, dimension: 2, inRange: { color: ["#eff6ff", "#60a5fa", "#1e3a8a"] } },
    series: [{ type: "heatmap", data: view.hours.map(cell) }],
  };
}

/** Daily peaks with their bounds, the capacity need and the limit. */
export function peaksOption(view: CapacityView): ChartOption {
  const days = view.peaks.map((p) => short(p.date));
  return {
    animation: false,
    grid: { left: 56, right: 12, top: 30, bottom: 24 },
    legend: { top: 0, data: ["peak", "capacity need", "limit"], textStyle: { fontSize: 11 } },
    tooltip: { trigger: "axis", className: "pae-tooltip", valueFormatter: (v: unknown) => fmtNumber(v as number) },
    xAxis: { type: "category", data: days },
    yAxis: { type: "value", min: 0, axisLabel: { formatter: (v: number) => fmtNumber(v) } },
    series: [
      { name: "lower", type: "line", stack: "b", data: view.peaks.map((p) => p.lower), lineStyle: { opacity: 0 }, symbol: "none", tooltip: { show: false } },
      { name: "bounds", type: "line", stack: "b", data: view.peaks.map((p) => (p.upper != null && p.lower != null ? p.upper - p.lower : null)), lineStyle: { opacity: 0 }, symbol: "none", areaStyle: { color: "rgba(37,99,235,0.15)" }, tooltip: { show: false } },
      { name: "peak", type: "line", data: view.peaks.map((p) => p.value), itemStyle: { color: "#2563eb" } },
      { name: "capacity need", type: "line", data: view.peaks.map((p) => p.need), lineStyle: { type: "dashed" }, itemStyle: { color: "#ea580c" } },
      { name: "limit", type: "line", step: "middle", data: view.peaks.map((p) => p.limit), symbol: "none", itemStyle: { color: "#b91c1c" } },
    ],
  };
}

export interface CapacityPlanningProps {
  view: CapacityView | null;
  resource?: Resource<unknown>;
  onMetricChange?: (metric: string) => void;
}

export function CapacityPlanning({ view, resource = { status: "ok", data: null }, onMetricChange }: CapacityPlanningProps) {
  const heat = useMemo(() => (view && view.hours.length ? hourDayOption(view) : null), [view]);
  const peaks = useMemo(() => (view && view.peaks.length ? peaksOption(view) : null), [view]);
  const ok = resource.status === "ok" && !!view;
  const alert = view ? nextAlert(view) : null;
  return (
    <Panel testId="capacity-planning" title="Capacity planning" state={resource.status === "ok" && !ok ? "no_data" : resource.status}
      subtitle={ok ? <>Next {view.peaks.length} days by hour, local time{view.timezone ? ` (${view.timezone})` : ""} · as of {fmtDate(view.asOfDate)}{view.modelVersion ? ` · model ${view.modelVersion}` : ""}</> : "Peak hours and the capacity they need"}
      actions={ok && onMetricChange && view.metrics.length > 1 ? (
        <div className="segmented" role="group" aria-label="Metric">
          {view.metrics.map((m) => <button key={m} type="button" aria-pressed={m === view.metric} onClick={() => onMetricChange(m)}>{m}</button>)}
        </div>
      ) : undefined}>
      {resource.status !== "ok" ? (
        <ViewState resource={resource} what="peak-usage forecasts" />
      ) : !ok ? (
        <ViewState resource={{ status: "no_data", message: "the answer had no hourly forecast or daily peak" }} what="peak-usage forecasts" />
      ) : (
        <div className="capacity-layout">
          <div>
            {heat ? <EChart option={heat} height={Math.max(180, 40 + 24 * new Set(view.hours.map((c) => c.day)).size)} testId="capacity-heatmap" ariaLabel={`Forecast ${view.metric} by hour of day and day`} />
              : <p className="hint">No hourly forecast in the answer (daily granularity).</p>}
            {peaks && <EChart option={peaks} height={200} testId="capacity-peaks-chart" ariaLabel="Daily peaks with bounds, capacity need and limit" />}
          </div>
          <div>
            <p className={alert ? "alert alert--warning" : "alert alert--ok"} data-testid="capacity-alert">
              {alert ? `Next capacity alert: ${alert} (${view.alerts.length} alerted hour${view.alerts.length === 1 ? "" : "s"})` : "No capacity alert in the forecast window."}
            </p>
            {view.weekPeak && <p className="hint">Week's peak: {fmtNumber(view.weekPeak.value)} {view.metric} on {fmtDate(view.weekPeak.date)} at {view.weekPeak.hour == null ? "–" : HOURS[view.weekPeak.hour]}</p>}
            <table className="grid compact" data-testid="capacity-peaks">
              <thead><tr><th>Day</th><th>Peak hour (chance)</th><th>Peak (bounds)</th><th>Need</th><th>Limit</th></tr></thead>
              <tbody>
                {view.peaks.map((p) => (
                  <tr key={p.date} className={p.alert ? "is-alert" : undefined}>
                    <td>{fmtDate(p.date)}</td>
                    <td>{p.hour == null ? "–" : HOURS[p.hour]}{p.topHours[0] ? ` (${fmtPercent(p.topHours[0].probability)})` : ""}</td>
                    <td>{fmtNumber(p.value)} ({fmtNumber(p.lower)} – {fmtNumber(p.upper)})</td>
                    <td>{fmtNumber(p.need)}</td>
                    <td title={p.limitSource ?? undefined}>{fmtNumber(p.limit)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </div>
      )}
    </Panel>
  );
}
