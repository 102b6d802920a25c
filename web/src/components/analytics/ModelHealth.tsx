import { useMemo } from "react";
import { fmtDate, fmtNumber, fmtPercent } from "../../lib/format";
import { headline, healthOption, kindLabel, type ModelHealthView } from "../../lib/modelHealth";
import type { Resource } from "../../lib/resource";
import { EChart } from "../charts/EChart";
import { Panel, ViewState } from "../ViewState";

const dec = (v: number | null, digits = 3) => (v === null ? "–" : v.toFixed(digits));

/** Per prediction kind: champion/challenger, realised accuracy against the promise, alerts and the last A/B. */
export function ModelHealth({ view, resource = { status: "ok", data: null } }: { view: ModelHealthView | null; resource?: Resource<unknown> }) {
  const ok = resource.status === "ok" && !!view && view.kinds.length > 0;
  const option = useMemo(() => (view ? healthOption(view) : null), [view]);
  const alerting = view?.kinds.filter((k) => k.alert).length ?? 0;
  return (
    <Panel testId="model-health" title="Model health" state={resource.status === "ok" && !ok ? "no_data" : resource.status}
      subtitle={ok ? <>Realised accuracy over {view.windowDays} days, all workspaces · as of {fmtDate(view.asOfDate)}{alerting ? ` · ${alerting} alerting` : ""}</> : "Realised accuracy of each prediction kind"}>
      {resource.status !== "ok" ? (
        <ViewState resource={resource} what="realised accuracy" />
      ) : !ok ? (
        <ViewState resource={{ status: "no_data", message: "the nightly monitor has not scored any prediction yet" }} what="realised accuracy" />
      ) : (
        <>
          {option && view.kinds.some((k) => k.daily.length) && <EChart option={option} height={220} testId="model-health-chart" ariaLabel="Realised WAPE per day and kind" />}
          <div className="table-scroll table-scroll--short">
            <table className="grid compact" data-testid="model-health-kinds">
              <thead><tr><th>Kind</th><th>Status</th><th>Realised vs promised</th><th>Champion / challenger</th><th>Coverage (1 d)</th><th>Outcomes</th><th>A/B</th></tr></thead>
              <tbody>
                {view.kinds.map((k) => {
                  const first = k.realised.find((r) => r.bucket === "1d") ?? k.realised[0];
                  const outcome = k.outcomes[0];
                  return (
                    <tr key={k.kind} className={k.alert ? "is-alert" : undefined} data-kind={k.kind}>
                      <td>{kindLabel(k.kind)}</td>
                      <td>{k.alert ? <span className="badge badge--critical">alert</span> : k.alerts.some((a) => a.status === "ok") ? "ok" : "no data yet"}</td>
                      <td>{headline(k)}</td>
                      <td>{k.champion ? `v${k.champion.version}` : "–"} / {k.challenger ? `v${k.challenger.version}` : "–"}</td>
                      <td>{first ? `${fmtPercent(first.coverage)} of ${fmtNumber(first.n)}` : "–"}{first?.peakHourHit != null ? ` · peak hour ${fmtPercent(first.peakHourHit)}` : ""}</td>
                      <td>{outcome ? `AUC ${dec(outcome.auc)} · Brier ${dec(outcome.brier)} · calib. ${dec(outcome.calibration)}${outcome.precision !== null ? ` · precision ${fmtPercent(outcome.precision)}, recall ${fmtPercent(outcome.recall)}` : ""} (as of ${fmtDate(outcome.asOfDate)})` : "–"}</td>
                      <td>{k.ab ? `${k.ab.verdict.replace(/_/g, " ")} (${dec(k.ab.diff)} [${dec(k.ab.ciLow)}, ${dec(k.ab.ciHigh)}])` : "–"}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        </>
      )}
    </Panel>
  );
}
