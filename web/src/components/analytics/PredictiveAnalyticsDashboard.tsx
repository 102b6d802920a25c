import { useCallback, useMemo, useState } from "react";
import { parseErrorRates } from "../../lib/agents";
import { parseCapacity } from "../../lib/capacity";
import { useClient } from "../../lib/client-context";
import * as api from "../../lib/endpoints";
import { parseGrowth } from "../../lib/growth";
import { mapResource, useResource } from "../../lib/resource";
import type { ChurnContact } from "../../lib/types";
import type { WhatIfRequest } from "../../lib/whatif";
import { parseModelHealth } from "../../lib/modelHealth";
import { AgentErrorAlerts } from "./AgentErrorAlerts";
import { CapacityPlanning } from "./CapacityPlanning";
import { ChurnRiskMatrix } from "./ChurnRiskMatrix";
import { ConsumptionForecast } from "./ConsumptionForecast";
import { GrowthProjections } from "./GrowthProjections";
import { ModelHealth } from "./ModelHealth";
import { PredictionSummaryCards } from "./PredictionSummaryCards";

export interface PredictiveAnalyticsDashboardProps {
  workspaceId: string;
  /** Days ahead shown by the forecasts (consumption and growth). */
  predictionHorizon: number;
}

const UNREADABLE = "the server answered in a shape this dashboard does not read yet";

export function PredictiveAnalyticsDashboard({ workspaceId, predictionHorizon }: PredictiveAnalyticsDashboardProps) {
  const client = useClient();
  const ws = workspaceId;
  const [growthMetric, setGrowthMetric] = useState("mau");
  const [capacityMetric, setCapacityMetric] = useState("calls");

  // The summary's 30-day total needs at least 30 days, whatever the chart shows.
  const [consumption] = useResource((s) => api.consumption(client, ws, Math.max(predictionHorizon, 30), s), [client, ws, predictionHorizon]);
  const [churnCounts] = useResource((s) => api.churnCounts(client, ws, s), [client, ws]);
  const [churnUsers] = useResource((s) => api.churnUsers(client, ws, s), [client, ws]);
  const [contacts, reloadContacts] = useResource((s) => api.contacts(client, ws, s), [client, ws]);
  // MAU feeds the summary card and is the projection shown first; another metric is fetched when picked.
  const [mauRaw] = useResource((s) => api.growth(client, ws, "mau", predictionHorizon, s), [client, ws, predictionHorizon]);
  const [otherRaw] = useResource(
    (s) => (growthMetric === "mau" ? Promise.resolve(null) : api.growth(client, ws, growthMetric, predictionHorizon, s)),
    [client, ws, growthMetric, predictionHorizon],
  );
  const growthRaw = growthMetric === "mau" ? mauRaw : otherRaw;
  const [peaksRaw] = useResource((s) => api.peakUsage(client, ws, s), [client, ws]);
  const [errorsRaw] = useResource((s) => api.errorRates(client, ws, s), [client, ws]);
  const [healthRaw] = useResource((s) => api.modelHealth(client, s), [client]);

  const growth = useMemo(() => mapResource(growthRaw, (b) => parseGrowth(b, growthMetric), UNREADABLE), [growthRaw, growthMetric]);
  const mau = useMemo(() => mapResource(mauRaw, (b) => parseGrowth(b, "mau"), UNREADABLE), [mauRaw]);
  const capacity = useMemo(() => mapResource(peaksRaw, (b) => parseCapacity(b, capacityMetric), UNREADABLE), [peaksRaw, capacityMetric]);
  const agents = useMemo(() => mapResource(errorsRaw, parseErrorRates, UNREADABLE), [errorsRaw]);
  const health = useMemo(() => mapResource(healthRaw, parseModelHealth, UNREADABLE), [healthRaw]);

  const contacted = useMemo(() => {
    const m = new Map<string, ChurnContact>();
    if (contacts.status === "ok") for (const c of contacts.data.contacts) m.set(c.user_id, c);
    return m;
  }, [contacts]);

  const runWhatIf = useCallback((req: WhatIfRequest) => client.post<unknown>(api.PATHS.whatIf, req), [client]);
  const markContacted = useCallback(
    async (ids: string[]) => {
      await api.markContacted(client, ws, ids);
      reloadContacts();
    },
    [client, ws, reloadContacts],
  );

  const c = consumption.status === "ok" ? consumption.data : null;
  const horizon = Math.min(predictionHorizon, c?.predictions.length ?? predictionHorizon);
  const g = growth.status === "ok" ? growth.data : null;

  return (
    <div className="predictive-dashboard">
      <PredictionSummaryCards consumption={consumption} churn={churnCounts} growth={mau} capacity={capacity} agents={agents} />
      <ConsumptionForecast
        predictions={c ? c.predictions.slice(0, horizon) : []}
        historical={c?.history ?? []}
        breakdown={c ? c.breakdown.map((b) => ({ ...b, predictions: b.predictions.slice(0, horizon) })) : []}
        asOfDate={c?.as_of_date}
        confidenceLevel={c?.confidence_level ?? null}
        modelVersion={c?.model_version}
        resource={consumption}
        workspaceId={ws}
        horizonDays={horizon}
        runWhatIf={runWhatIf}
      />
      <ChurnRiskMatrix
        users={churnUsers.status === "ok" ? churnUsers.data.users : []}
        total={churnUsers.status === "ok" ? churnUsers.data.total : undefined}
        predictionDate={churnUsers.status === "ok" ? churnUsers.data.prediction_date : undefined}
        resource={churnUsers}
        onUserSelect={() => undefined}
        contacted={contacted}
        onMarkContacted={markContacted}
        workspaceLabel={c?.workspace.external_id ?? ws}
      />
      <GrowthProjections
        metrics={g ? [{ metric: growthMetric, history: g.history }] : []}
        scenarios={g ? Object.entries(g.scenarios).map(([name, points]) => ({ name, points })) : []}
        view={g}
        metric={growthMetric}
        onMetricChange={setGrowthMetric}
        resource={growth}
      />
      <CapacityPlanning view={capacity.status === "ok" ? capacity.data : null} resource={capacity} onMetricChange={setCapacityMetric} />
      <AgentErrorAlerts view={agents.status === "ok" ? agents.data : null} resource={agents} />
      <ModelHealth view={health.status === "ok" ? health.data : null} resource={health} />
    </div>
  );
}
