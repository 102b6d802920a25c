import { useEffect, useMemo, useRef, useState } from "react";
import { ApiError } from "../../lib/api";
import { forecastOption } from "../../lib/forecastChart";
import { addDays, fmtDate, fmtNumber } from "../../lib/format";
import type { Resource } from "../../lib/resource";
import type { DimensionForecast, ForecastPoint, HistoryPoint } from "../../lib/types";
import {
  buildWhatIfRequest,
  NEUTRAL_CONTROLS,
  parseWhatIf,
  type ScenarioControls,
  type WhatIfRequest,
  type WhatIfResult,
} from "../../lib/whatif";
import { EChart } from "../charts/EChart";
import { Panel, ViewState } from "../ViewState";

export interface ConsumptionForecastProps {
  /** The forecast of the workspace total (the seed's `predictions`). */
  predictions: ForecastPoint[];
  /** Credits used up to the as-of date (the seed's `historical`). */
  historical: HistoryPoint[];
  breakdown?: DimensionForecast[];
  asOfDate?: string;
  confidenceLevel?: number | null;
  modelVersion?: string | null;
  /** The state of the load; anything but `ok` is shown instead of the chart. */
  resource?: Resource<unknown>;
  workspaceId?: string;
  horizonDays?: number;
  /** POST /api/analytics/predictions/what-if; absent: no scenario controls. */
  runWhatIf?: (request: WhatIfRequest) => Promise<unknown>;
}

type WhatIfState =
  | { status: "probing" }
  | { status: "unavailable"; message: string }
  | { status: "ready" }
  | { status: "running" }
  | { status: "ok"; result: WhatIfResult }
  | { status: "error"; message: string };

const sum = (points: ForecastPoint[]) => points.reduce((a, p) => a + (p.predicted_value ?? 0), 0);
const isNeutral = (c: ScenarioControls) => JSON.stringify({ ...c, usageStart: null }) === JSON.stringify({ ...NEUTRAL_CONTROLS, usageStart: null });

export function ConsumptionForecast({
  predictions,
  historical,
  breakdown = [],
  asOfDate,
  confidenceLevel = null,
  modelVersion,
  resource = { status: "ok", data: null },
  workspaceId,
  horizonDays = predictions.length,
  runWhatIf,
}: ConsumptionForecastProps) {
  const [dimension, setDimension] = useState<string>("total");
  const [controls, setControls] = useState<ScenarioControls>(NEUTRAL_CONTROLS);
  const [whatIf, setWhatIf] = useState<WhatIfState>({ status: "probing" });
  const requestSeq = useRef(0);
  const ok = resource.status === "ok" && predictions.length > 0;
  const asOf = asOfDate ?? historical[historical.length - 1]?.date ?? predictions[0]?.date ?? "";

  // Probe the what-if endpoint with the baseline (no adjustments): 404/405 means it is not built yet.
  useEffect(() => {
    if (!ok || !runWhatIf || !workspaceId) return;
    let cancelled = false;
    setWhatIf({ status: "probing" });
    runWhatIf(buildWhatIfRequest(workspaceId, horizonDays, NEUTRAL_CONTROLS))
      .then(() => !cancelled && setWhatIf({ status: "ready" }))
      .catch((exc) => {
        if (cancelled) return;
        if (exc instanceof ApiError && exc.kind === "not_built") setWhatIf({ status: "unavailable", message: "what-if not available yet" });
        else setWhatIf({ status: "error", message: (exc as Error).message });
      });
    return () => {
      cancelled = true;
    };
  }, [ok, runWhatIf, workspaceId, horizonDays]);

  // Run the scenario a moment after the last change of a control.
  const enabled = whatIf.status !== "probing" && whatIf.status !== "unavailable";
  useEffect(() => {
    if (!enabled || !runWhatIf || !workspaceId) return;
    if (isNeutral(controls)) {
      setWhatIf((s) => (s.status === "ok" || s.status === "running" ? { status: "ready" } : s));
      return;
    }
    const seq = ++requestSeq.current;
    const timer = setTimeout(() => {
      setWhatIf({ status: "running" });
      runWhatIf(buildWhatIfRequest(workspaceId, horizonDays, controls))
        .then((body) => {
          if (seq !== requestSeq.current) return;
          const result = parseWhatIf(body);
          setWhatIf(result ? { status: "ok", result } : { status: "error", message: "the what-if answer had no adjusted series to draw" });
        })
        .catch((exc) => seq === requestSeq.current && setWhatIf({ status: "error", message: (exc as Error).message }));
    }, 250);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [controls, enabled]);

  const shown = dimension === "total" ? predictions : breakdown.find((b) => b.dimension === dimension)?.predictions ?? predictions;
  const adjusted = dimension === "total" && whatIf.status === "ok" ? whatIf.result.adjusted : null;
  const option = useMemo(
    () =>
      forecastOption({
        historical: dimension === "total" ? historical : [],
        predictions: shown,
        confidenceLevel,
        asOfDate: asOf,
        label: dimension === "total" ? "credits / day" : `${dimension} credits / day`,
        adjusted,
      }),
    [historical, shown, confidenceLevel, asOf, dimension, adjusted],
  );

  const total = sum(predictions);
  const parts = breakdown.map((b) => ({ dimension: b.dimension, total: sum(b.predictions) }));
  const largest = Math.max(1, ...parts.map((p) => p.total));
  const defaultStart = asOf ? addDays(asOf, 1) : "";

  return (
    <Panel
      testId="consumption-forecast"
      title="Credit consumption forecast"
      state={resource.status}
      subtitle={
        ok ? (
          <>
            Daily credits, history and the next {predictions.length} days · as of {fmtDate(asOf)}
            {modelVersion ? ` · model ${modelVersion}` : ""}
          </>
        ) : undefined
      }
    >
      {resource.status !== "ok" ? (
        <ViewState resource={resource} what="consumption forecast" />
      ) : !ok ? (
        <ViewState resource={{ status: "no_data", message: "the API returned no forecast days" }} what="consumption forecast" />
      ) : (
        <div className="forecast-layout">
          <div className="forecast-main">
            <div className="segmented" role="group" aria-label="Series">
              {["total", ...breakdown.map((b) => b.dimension)].map((d) => (
                <button key={d} type="button" aria-pressed={dimension === d} onClick={() => setDimension(d)}>
                  {d === "total" ? "Total" : d}
                </button>
              ))}
            </div>
            <EChart option={option} height={320} testId="forecast-chart" ariaLabel="Credit history and forecast with 80% and 95% intervals" />
            {dimension !== "total" && <p className="hint">History is served for the workspace total only; this shows {dimension}'s forecast.</p>}
          </div>
          <aside className="forecast-side">
            <h3>Breakdown, next {predictions.length} days</h3>
            <p className="big-number" data-testid="forecast-total">
              {fmtNumber(total)} <small>credits</small>
            </p>
            <ul className="breakdown" data-testid="forecast-breakdown">
              {parts.map((p) => (
                <li key={p.dimension}>
                  <span className="breakdown__name">{p.dimension}</span>
                  <span className="breakdown__bar" style={{ width: `${(100 * p.total) / largest}%` }} />
                  <span className="breakdown__value">
                    {fmtNumber(p.total)} ({total > 0 ? Math.round((100 * p.total) / total) : 0}%)
                  </span>
                </li>
              ))}
            </ul>
            {runWhatIf && (
              <fieldset className="scenario" data-testid="scenario-controls" disabled={!enabled} data-whatif={whatIf.status}>
                <legend>Scenario</legend>
                {whatIf.status === "unavailable" && <p className="hint" data-testid="whatif-unavailable">{whatIf.message}</p>}
                <label>
                  Usage change from {fmtDate(controls.usageStart ?? defaultStart)}: <output>{controls.usagePercent > 0 ? "+" : ""}{controls.usagePercent}%</output>
                  <input
                    type="range" min={-50} max={100} step={5} value={controls.usagePercent}
                    data-testid="scenario-usage"
                    onChange={(e) => setControls({ ...controls, usagePercent: Number(e.target.value), usageStart: controls.usageStart ?? defaultStart })}
                  />
                </label>
                <label>
                  New users per week: <output>{controls.userGrowthPercent > 0 ? "+" : ""}{controls.userGrowthPercent}%</output>
                  <input type="range" min={-50} max={50} step={5} value={controls.userGrowthPercent}
                    onChange={(e) => setControls({ ...controls, userGrowthPercent: Number(e.target.value) })} />
                </label>
                <label>
                  Retain high-risk users: <output>{Math.round(controls.retainHighRisk * 100)}%</output>
                  <input type="range" min={0} max={1} step={0.1} value={controls.retainHighRisk}
                    onChange={(e) => setControls({ ...controls, retainHighRisk: Number(e.target.value) })} />
                </label>
                <label>
                  Price of{" "}
                  <select value={controls.priceDimension ?? ""} onChange={(e) => setControls({ ...controls, priceDimension: e.target.value || null })}>
                    <option value="">(a feature)</option>
                    {breakdown.map((b) => <option key={b.dimension} value={b.dimension}>{b.dimension}</option>)}
                  </select>{" "}
                  × <output>{controls.priceMultiplier.toFixed(2)}</output>
                  <input type="range" min={0.5} max={2} step={0.05} value={controls.priceMultiplier} disabled={!controls.priceDimension}
                    onChange={(e) => setControls({ ...controls, priceMultiplier: Number(e.target.value) })} />
                </label>
                <button type="button" onClick={() => setControls(NEUTRAL_CONTROLS)} disabled={isNeutral(controls)}>Reset</button>
                {whatIf.status === "running" && <p className="hint">Computing the scenario…</p>}
                {whatIf.status === "error" && <p className="error-message" role="alert">What-if failed: {whatIf.message}</p>}
                {whatIf.status === "ok" && (
                  <div className="whatif-result" data-testid="whatif-result">
                    {whatIf.result.difference !== null && (
                      <p>
                        Difference over the horizon: <strong>{whatIf.result.difference > 0 ? "+" : ""}{fmtNumber(whatIf.result.difference)} credits</strong>
                      </p>
                    )}
                    {whatIf.result.explanations.length > 0 && (
                      <ul>{whatIf.result.explanations.map((t, i) => <li key={i}>{t}</li>)}</ul>
                    )}
                  </div>
                )}
              </fieldset>
            )}
          </aside>
        </div>
      )}
    </Panel>
  );
}
