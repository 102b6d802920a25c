import { levelRank, type AgentErrorsView } from "../../lib/agents";
import { fmtDate, fmtNumber, fmtPercent } from "../../lib/format";
import type { Resource } from "../../lib/resource";
import { Panel, ViewState } from "../ViewState";

export function AgentErrorAlerts({ view, resource = { status: "ok", data: null } }: { view: AgentErrorsView | null; resource?: Resource<unknown> }) {
  const agents = view ? [...view.agents].sort((a, b) => levelRank(b.level) - levelRank(a.level) || (b.probability ?? 0) - (a.probability ?? 0)) : [];
  const ok = resource.status === "ok" && !!view;
  return (
    <Panel testId="agent-error-alerts" title="Agent error-rate alerts" state={resource.status === "ok" && !ok ? "no_data" : resource.status}
      subtitle={ok ? <>{view.alerting ?? agents.filter((a) => a.level).length} of {view.total ?? agents.length} agents alerted · as of {fmtDate(view.asOfDate)}</> : "Agents whose failing calls are building up"}>
      {resource.status !== "ok" ? (
        <ViewState resource={resource} what="error-rate forecasts" />
      ) : !ok ? (
        <ViewState resource={{ status: "no_data", message: "the answer listed no agents" }} what="error-rate forecasts" />
      ) : agents.length === 0 ? (
        <p className="hint" data-testid="no-agents">{view.note ?? "This workspace has no agents."}</p>
      ) : (
        <div className="table-scroll table-scroll--short">
          <table className="grid compact" data-testid="agent-alerts">
            <thead><tr><th>Agent</th><th>Alert</th><th>Chance of breach</th><th>Expected</th><th>Rate now / usual / threshold</th><th>In 14 days (95%)</th><th>Calls (7 d)</th><th>Why</th></tr></thead>
            <tbody>
              {agents.slice(0, 200).map((a) => (
                <tr key={a.agent} className={levelRank(a.level) >= 2 ? "is-alert" : undefined}>
                  <td>{a.agent}</td>
                  <td>{a.level ? <span className={`badge badge--${a.level}`}>{a.level}</span> : (a.status ?? "–").replace(/_/g, " ")}</td>
                  <td>{fmtPercent(a.probability)}</td>
                  <td>{fmtDate(a.breachDate)}</td>
                  <td>{fmtPercent(a.currentRate, 1)} / {fmtPercent(a.baselineRate, 1)} / {fmtPercent(a.threshold, 1)}</td>
                  <td>{a.horizon ? `${fmtPercent(a.horizon.rate, 1)} (${fmtPercent(a.horizon.lower, 1)} – ${fmtPercent(a.horizon.upper, 1)})` : "–"}</td>
                  <td>{fmtNumber(a.calls)}</td>
                  <td title={a.reason ?? undefined}>{a.reason ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  );
}
