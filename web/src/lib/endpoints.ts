import type { Client } from "./api";
import type {
  ChurnContactList,
  ChurnContactsMarked,
  ChurnRiskPage,
  ConsumptionForecastResponse,
  UserChurnRisk,
  WorkspaceList,
} from "./types";

export const PATHS = {
  workspaces: "/api/analytics/workspaces",
  consumption: "/api/analytics/predictions/consumption",
  churn: "/api/analytics/predictions/churn",
  contacts: "/api/analytics/predictions/churn/contacts",
  growth: "/api/analytics/predictions/growth",
  peakUsage: "/api/analytics/predictions/peak-usage",
  errorRates: "/api/analytics/predictions/error-rates",
  whatIf: "/api/analytics/predictions/what-if",
  modelHealth: "/api/analytics/models/health",
} as const;

/** The API's largest churn page (services/api/routers/churn.py, MAX_LIMIT). */
export const CHURN_PAGE = 1000;
/** Risk levels of the churn wording (pipelines/churn/wording.py: HIGH_RISK, MEDIUM_RISK). */
export const HIGH_RISK = 0.7;
export const MEDIUM_RISK = 0.4;
/** The most users the matrix loads; beyond it the view says how many it left out. */
export const MAX_CHURN_USERS = 20_000;

export function workspaces(client: Client, signal?: AbortSignal) {
  return client.get<WorkspaceList>(PATHS.workspaces, {}, signal);
}

export function consumption(client: Client, workspaceId: string, daysAhead: number, signal?: AbortSignal) {
  return client.get<ConsumptionForecastResponse>(
    PATHS.consumption,
    { workspace_id: workspaceId, days_ahead: daysAhead, granularity: "day" },
    signal,
  );
}

export interface ChurnCounts {
  prediction_date: string;
  total: number;
  high: number;
  medium: number;
  low: number;
}

/** Users by risk level, from three one-row pages (the API counts users past a threshold). */
export async function churnCounts(client: Client, workspaceId: string, signal?: AbortSignal): Promise<ChurnCounts> {
  const page = (t: number) =>
    client.get<ChurnRiskPage>(PATHS.churn, { workspace_id: workspaceId, risk_threshold: t, limit: 1 }, signal);
  const [all, medium, high] = await Promise.all([page(0), page(MEDIUM_RISK), page(HIGH_RISK)]);
  return {
    prediction_date: all.prediction_date,
    total: all.total,
    high: high.total,
    medium: medium.total - high.total,
    low: all.total - medium.total,
  };
}

export interface ChurnUsers {
  prediction_date: string;
  total: number;
  users: UserChurnRisk[];
}

/** Every scored user of a workspace (up to MAX_CHURN_USERS), riskiest first, in parallel pages. */
export async function churnUsers(client: Client, workspaceId: string, signal?: AbortSignal): Promise<ChurnUsers> {
  const page = (offset: number) =>
    client.get<ChurnRiskPage>(PATHS.churn, { workspace_id: workspaceId, limit: CHURN_PAGE, offset }, signal);
  const first = await page(0);
  const wanted = Math.min(first.total, MAX_CHURN_USERS);
  const offsets: number[] = [];
  for (let o = CHURN_PAGE; o < wanted; o += CHURN_PAGE) offsets.push(o);
  const rest = await Promise.all(offsets.map(page));
  const users = [first, ...rest].flatMap((p) => p.users).slice(0, wanted);
  return { prediction_date: first.prediction_date, total: first.total, users };
}

export function contacts(client: Client, workspaceId: string, signal?: AbortSignal) {
  return client.get<ChurnContactList>(PATHS.contacts, { workspace_id: workspaceId }, signal);
}

export function markContacted(client: Client, workspaceId: string, userIds: string[], note?: string) {
  return client.post<ChurnContactsMarked>(PATHS.contacts, { workspace_id: workspaceId, user_ids: userIds, note });
}

export function growth(client: Client, workspaceId: string, metric: string, horizonDays: number, signal?: AbortSignal) {
  return client.get<unknown>(PATHS.growth, { workspace_id: workspaceId, metric, horizon_days: horizonDays }, signal);
}

export function peakUsage(client: Client, workspaceId: string, signal?: AbortSignal) {
  return client.get<unknown>(PATHS.peakUsage, { workspace_id: workspaceId, granularity: "hourly", days_ahead: 7 }, signal);
}

export function errorRates(client: Client, workspaceId: string, signal?: AbortSignal) {
  return client.get<unknown>(PATHS.errorRates, { workspace_id: workspaceId }, signal);
}

/** Model health of every kind (platform-wide figures: not per workspace). */
export function modelHealth(client: Client, signal?: AbortSignal) {
  return client.get<unknown>(PATHS.modelHealth, {}, signal);
}
