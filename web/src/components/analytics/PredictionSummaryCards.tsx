import type { ReactNode } from "react";
import { agentsAtRisk, type AgentErrorsView } from "../../lib/agents";
import { nextAlert, type CapacityView } from "../../lib/capacity";
import type { ChurnCounts } from "../../lib/endpoints";
import { fmtDate, fmtNumber, fmtPercent, fmtSignedPercent } from "../../lib/format";
import { projectedChange, type GrowthView } from "../../lib/growth";
import type { Resource } from "../../lib/resource";
import type { ConsumptionForecastResponse } from "../../lib/types";

export interface PredictionSummaryCardsProps {
  consumption: Resource<ConsumptionForecastResponse>;
  churn: Resource<ChurnCounts>;
  growth: Resource<GrowthView | null>;
  capacity: Resource<CapacityView | null>;
  agents: Resource<AgentErrorsView | null>;
}

const STATE_TEXT: Record<string, string> = {
  loading: "Loading…",
  no_data: "No data yet",
  not_built: "Not available yet",
  insufficient: "Not enough data yet",
  error: "Could not load",
};

function Card({ testId, title, resource, children }: { testId: string; title: string; resource: Resource<unknown>; children?: () => ReactNode }) {
  return (
    <article className="card" data-testid={testId} data-state={resource.status}>
      <h3>{title}</h3>
      {resource.status === "ok" && children ? (
        children()
      ) : (
        <p className={`card__state card__state--${resource.status}`} title={"message" in resource ? resource.message : undefined}>
          {STATE_TEXT[resource.status]}
          {resource.status === "insufficient" && Object.keys(resource.counts).length > 0 && (
            <small> ({Object.entries(resource.counts).map(([k, v]) => `${k.replace(/_/g, " ")} ${v}`).join(", ")})</small>
          )}
          {resource.status === "error" && <small> ({resource.httpStatus ? `${resource.httpStatus}: ` : ""}{resource.message})</small>}
        </p>
      )}
    </article>
  );
}

/** Credits over the next `days` days with the interval calibrated for the total, and the change vs the last `days`. */
export function nextCredits(c: ConsumptionForecastResponse, days = 30) {
  const cum = c.cumulative.filter((p) => p.days <= days);
  const last = cum[cum.length - 1];
  const daily = c.predictions.slice(0, days);
  const value = last?.predicted_value ?? daily.reduce((a, p) => a + (p.predicted_value ?? 0), 0);
  const lower = last ? last.lower : daily.every((p) => p.lower != null) ? daily.reduce((a, p) => a + (p.lower ?? 0), 0) : null;
  const upper = last ? last.upper : daily.every((p) => p.upper != null) ? daily.reduce((a, p) => a + (p.upper ?? 0), 0) : null;
  const covered = last ? last.days : daily.length;
  const past = c.history.slice(-covered);
  const pastSum = past.reduce((a, h) => a + h.value, 0);
  const trend = past.length === covered && pastSum > 0 ? value / pastSum - 1 : null;
  return { value, lower, upper, days: covered, trend, pastSum };
}

function Trend({ value, label }: { value: number | null; label: string }) {
  if (value === null) return null;
  const cls = value > 0.005 ? "trend trend--up" : value < -0.005 ? "trend trend--down" : "trend";
  return <span className={cls}>{value > 0.005 ? "▲" : value < -0.005 ? "▼" : "■"} {fmtSignedPercent(value)} {label}</span>;
}

export function PredictionSummaryCards({ consumption, churn, growth, capacity, agents }: PredictionSummaryCardsProps) {
  return (
    <div className="cards" data-testid="prediction-summary-cards">
      <Card testId="card-credits" title="Credits, next 30 days" resource={consumption}>
        {() => {
          const c = (consumption as { data: ConsumptionForecastResponse }).data;
          const n = nextCredits(c, 30);
          return (
            <>
              <p className="big-number" data-testid="card-credits-value">{fmtNumber(n.value)}</p>
              <p className="card__detail">{n.lower != null && n.upper != null ? `${Math.round((c.confidence_level ?? 0.95) * 100)}% interval ${fmtNumber(n.lower)} – ${fmtNumber(n.upper)}` : "no interval"}</p>
              <Trend value={n.trend} label={`vs the last ${n.days} days`} />
              <p className="card__asof">as of {fmtDate(c.as_of_date)}</p>
            </>
          );
        }}
      </Card>
      <Card testId="card-churn" title="Users at churn risk" resource={churn}>
        {() => {
          const c = (churn as { data: ChurnCounts }).data;
          return (
            <>
              <p className="big-number" data-testid="card-churn-high">{c.high.toLocaleString("en-US")} <small>high</small></p>
              <p className="card__detail">
                <span className="badge badge--medium">{c.medium.toLocaleString("en-US")} medium</span>{" "}
                <span className="badge badge--low">{c.low.toLocaleString("en-US")} low</span>
              </p>
              <span className="trend">{fmtPercent(c.total ? c.high / c.total : null)} of {c.total.toLocaleString("en-US")} scored users at high risk</span>
              <p className="card__asof">scored {fmtDate(c.prediction_date)}</p>
            </>
          );
        }}
      </Card>
      <Card testId="card-growth" title="Projected MAU change" resource={growth}>
        {() => {
          const g = (growth as { data: GrowthView | null }).data;
          const ch = g ? projectedChange(g) : null;
          return ch ? (
            <>
              <p className="big-number">{fmtSignedPercent(ch.change)}</p>
              <p className="card__detail">{fmtNumber(ch.from)} → {fmtNumber(ch.to)} MAU (likely)</p>
              <p className="card__asof">as of {fmtDate(g?.asOfDate)}</p>
            </>
          ) : <p className="card__state">No projection to compare</p>;
        }}
      </Card>
      <Card testId="card-capacity" title="Next capacity alert" resource={capacity}>
        {() => {
          const v = (capacity as { data: CapacityView | null }).data;
          const when = v ? nextAlert(v) : null;
          const week = v?.weekPeak;
          return (
            <>
              <p className="big-number" data-testid="card-capacity-value">
                {when ? <>{fmtDate(when.slice(0, 10)).replace(/, \d{4}$/, "")} <small>{when.slice(11)} local</small></> : "None"}
              </p>
              <p className="card__detail">{when ? `${v?.alerts.length ?? 0} hour(s) above the limit` : "no hour above the limit"}</p>
              {week && <span className="trend">week's peak {fmtNumber(week.value)} {v?.metric} on {fmtDate(week.date).replace(/, \d{4}$/, "")}</span>}
              <p className="card__asof">as of {fmtDate(v?.asOfDate)}</p>
            </>
          );
        }}
      </Card>
      <Card testId="card-agents" title="Agents at risk" resource={agents}>
        {() => {
          const v = (agents as { data: AgentErrorsView | null }).data;
          const risky = v ? agentsAtRisk(v) : [];
          return (
            <>
              <p className="big-number" data-testid="card-agents-value">{risky.length} <small>of {v?.inWorkspace ?? v?.agents.length ?? 0} agents</small></p>
              <p className="card__detail">{v?.status === "no_agents" ? "this workspace has no agents" : risky[0] ? `worst: ${risky[0].agent} (${risky[0].level})` : "no warning or critical alert"}</p>
              <p className="card__asof">as of {fmtDate(v?.asOfDate)}</p>
            </>
          );
        }}
      </Card>
    </div>
  );
}
