import { useMemo } from "react";
import { fmtDate, fmtNumber, fmtPercent, fmtSignedPercent } from "../../lib/format";
import { projectedChange, type GrowthBand, type GrowthView } from "../../lib/growth";
import type { Resource } from "../../lib/resource";
import type { SeriesPoint } from "../../lib/whatif";
import type { ChartOption } from "../charts/echarts";
import { EChart } from "../charts/EChart";
import { Panel, ViewState } from "../ViewState";

export interface GrowthMetric { metric: string; history: SeriesPoint[] }
export interface GrowthScenario { name: string; points: SeriesPoint[] }

export interface GrowthProjectionsProps {
  metrics: GrowthMetric[];
  scenarios: GrowthScenario[];
  view?: GrowthView | null;
  metric: string;
  onMetricChange?: (metric: string) => void;
  resource?: Resource<unknown>;
}

const COLORS: Record<string, string> = { worst: "#dc2626", likely: "#2563eb", best: "#16a34a" };
export const GROWTH_METRICS = ["dau", "wau", "mau"];

export function growthOption(metric: string, history: SeriesPoint[], scenarios: GrowthScenario[], view?: GrowthView | null): ChartOption {
  const dates = [...new Set([...history.map((p) => p.date), ...scenarios.flatMap((s) => s.points.map((p) => p.date))])].sort();
  const at = <P extends { date: string }>(points: P[], f: (p: P) => number | null) => {
    const m = new Map(points.map((p) => [p.date, f(p)]));
    return dates.map((d) => m.get(d) ?? null);
  };
  const band = view?.band ?? [];
  const width = (hi: number | null, lo: number | null) => (hi != null && lo != null ? Math.max(0, hi - lo) : null);
  const area = (name: string, stack: string, lo: (b: GrowthBand) => number | null, hi: (b: GrowthBand) => number | null, color: string) => [
    { name: `${name}-base`, type: "line", stack, data: at(band, lo), lineStyle: { opacity: 0 }, symbol: "none", silent: true, tooltip: { show: false } },
    { name, type: "line", stack, data: at(band, (b) => width(hi(b), lo(b))), lineStyle: { opacity: 0 }, symbol: "none", areaStyle: { color }, itemStyle: { color }, silent: true, tooltip: { show: false } },
  ];
  const series: unknown[] = [];
  if (band.some((b) => b.lo95 != null)) series.push(...area("95% interval", "b95", (b) => b.lo95, (b) => b.hi95, "rgba(37,99,235,0.10)"));
  if (band.some((b) => b.lo80 != null)) series.push(...area("80% interval", "b80", (b) => b.lo80, (b) => b.hi80, "rgba(37,99,235,0.18)"));
  series.push({ name: "actual", type: "line", data: at(history, (p) => p.value), symbol: "none", lineStyle: { color: "#111827" }, itemStyle: { color: "#111827" } });
  for (const s of scenarios) {
    series.push({ name: s.name, type: "line", data: at(s.points, (p) => p.value), symbol: "none", lineStyle: { color: COLORS[s.name] ?? "#6b7280", type: s.name === "likely" ? "solid" : "dashed" }, itemStyle: { color: COLORS[s.name] ?? "#6b7280" } });
  }
  const goals = (view?.goals ?? []).filter((g) => g.target > 0);
  if (goals.length) {
    series.push({
      name: "goal", type: "line", data: [], itemStyle: { color: "#7c3aed" },
      markLine: {
        symbol: "none", lineStyle: { color: "#7c3aed", type: "dotted" },
        label: { formatter: (p: { data: { name: string } }) => p.data.name, position: "insideEndTop" },
        data: goals.map((g) => ({ yAxis: g.target, name: `goal ${fmtNumber(g.target)} by ${fmtDate(g.due)}` })),
      },
    });
  }
  const names = ["actual", ...scenarios.map((s) => s.name), ...(band.some((b) => b.lo80 != null) ? ["80% interval"] : []), ...(goals.length ? ["goal"] : [])];
  return {
    animation: false,
    grid: { left: 56, right: 16, top: 36, bottom: 28 },
    legend: { top: 0, data: names, textStyle: { fontSize: 11 } },
    tooltip: { trigger: "axis", className: "pae-tooltip", valueFormatter: (v: unknown) => fmtNumber(v as number) },
    xAxis: { type: "category", data: dates, boundaryGap: false, axisLabel: { formatter: (d: string) => fmtDate(d).replace(/, \d{4}$/, "") } },
    yAxis: { type: "value", name: metric.toUpperCase(), min: 0, max: goals.length ? (v: { max: number }) => Math.ceil(Math.max(v.max, ...goals.map((g) => g.target)) * 1.05) : undefined },
    series,
  };
}

export function GrowthProjections({ metrics, scenarios, view, metric, onMetricChange, resource = { status: "ok", data: null } }: GrowthProjectionsProps) {
  const history = metrics.find((m) => m.metric === metric)?.history ?? [];
  const option = useMemo(() => growthOption(metric, history, scenarios, view), [metric, history, scenarios, view]);
  const change = view ? projectedChange(view) : null;
  const ok = resource.status === "ok" && scenarios.length > 0;
  return (
    <Panel
      testId="growth-projections"
      title="Growth projections"
      state={resource.status === "ok" && !ok ? "no_data" : resource.status}
      subtitle={ok && view ? <>Active users, worst / likely / best · as of {fmtDate(view.asOfDate)}{view.modelVersion ? ` · model ${view.modelVersion}` : ""}</> : "Daily, weekly and monthly active users"}
      actions={
        onMetricChange && (
          <div className="segmented" role="group" aria-label="Metric">
            {GROWTH_METRICS.map((m) => (
              <button key={m} type="button" aria-pressed={m === metric} onClick={() => onMetricChange(m)}>{m.toUpperCase()}</button>
            ))}
          </div>
        )
      }
    >
      {resource.status !== "ok" ? (
        <ViewState resource={resource} what="growth projections" />
      ) : !ok ? (
        <ViewState resource={{ status: "no_data", message: "the answer had no scenario to draw" }} what="growth projections" />
      ) : (
        <div className="growth-layout">
          <EChart option={option} height={280} testId="growth-chart" ariaLabel={`${metric.toUpperCase()} history and worst, likely and best projections`} />
          <aside>
            {change && (
              <p className="big-number" data-testid="growth-change">
                {fmtSignedPercent(change.change)} <small>{metric.toUpperCase()} by the horizon ({fmtNumber(change.from)} → {fmtNumber(change.to)})</small>
              </p>
            )}
            <h3>Milestones</h3>
            {view?.milestones.length ? (
              <table className="grid compact" data-testid="growth-milestones">
                <thead><tr><th>{metric.toUpperCase()}</th><th>Likely date</th><th>Range (P10–P90)</th><th>Chance</th></tr></thead>
                <tbody>
                  {view.milestones.map((m, i) => (
                    <tr key={i}><td>{fmtNumber(m.threshold)}{m.kind === "goal" ? " (goal)" : ""}</td><td>{m.p50 ? fmtDate(m.p50) : "beyond horizon"}</td><td>{fmtDate(m.p10)} – {m.p90 ? fmtDate(m.p90) : "later"}</td><td>{fmtPercent(m.probability)}</td></tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p className="hint">No milestone within the horizon.</p>
            )}
            <h3>Goals</h3>
            {view?.goals.length ? (
              <ul className="goals" data-testid="growth-goals">
                {view.goals.map((g, i) => (
                  <li key={i}>
                    <strong>{metric.toUpperCase()} {fmtNumber(g.target)}</strong> by {fmtDate(g.due)}:{" "}
                    {g.status === "projected" ? <>{fmtPercent(g.probability)} likely (projected {fmtNumber(g.projected)}); needs {fmtSignedPercent(g.requiredGrowth)} per 30 days, projected {fmtSignedPercent(g.projectedGrowth)}</> : (g.status ?? "").replace(/_/g, " ")}
                    {g.note ? ` · ${g.note}` : ""}
                  </li>
                ))}
              </ul>
            ) : (
              <p className="hint">No goal set (<code>pae goal set</code>).</p>
            )}
          </aside>
        </div>
      )}
    </Panel>
  );
}
