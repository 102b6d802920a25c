// Response shapes of the API (services/api/schemas.py). Field names follow the Pydantic models exactly.

export interface WorkspaceRef {
  id: string;
  external_id: string;
}

export interface WorkspaceList {
  workspaces: WorkspaceRef[];
}

export interface ForecastPoint {
  date: string;
  days: number;
  predicted_value: number | null;
  lower: number | null;
  upper: number | null;
  /** An 80% interval, if the API ever serves one beside the stored level. */
  lower_80?: number | null;
  upper_80?: number | null;
}

export interface HistoryPoint {
  date: string;
  days: number;
  value: number;
}

export interface DimensionForecast {
  dimension: string;
  predictions: ForecastPoint[];
}

export interface ConsumptionForecastResponse {
  workspace: WorkspaceRef;
  as_of_date: string;
  model_version: string | null;
  confidence_level: number | null;
  granularity: "day" | "week";
  days_ahead: number;
  predictions: ForecastPoint[];
  breakdown: DimensionForecast[];
  cumulative: ForecastPoint[];
  history: HistoryPoint[];
}

export interface RiskFactor {
  feature: string;
  contribution: number;
  value?: number | string | boolean | null;
  direction?: string | null;
  text?: string | null;
  driver?: string | null;
}

export interface RecommendedAction {
  action_id: string;
  title: string;
  reason?: string | null;
  priority?: number | string | null;
  drivers?: string[];
}

export type ChurnState = "active" | "lapsing" | "dormant";

export interface UserChurnRisk {
  user_id: string;
  user_external_id: string | null;
  churn_probability: number;
  risk_score: number;
  risk_factors: RiskFactor[];
  recommended_actions: RecommendedAction[] | null;
  days_until_churn: number | null;
  model_version: string | null;
  state?: ChurnState | null;
}

export interface ChurnRiskPage {
  workspace: WorkspaceRef;
  prediction_date: string;
  risk_threshold: number;
  state?: ChurnState | null;
  total: number;
  limit: number;
  offset: number;
  users: UserChurnRisk[];
}

export interface ChurnContact {
  user_id: string;
  user_external_id: string | null;
  contacted_at: string;
  prediction_date: string;
  note: string | null;
  contacted_by: string | null;
}

export interface ChurnContactsMarked {
  workspace: WorkspaceRef;
  prediction_date: string;
  marked: number;
  already_marked: number;
}

export interface ChurnContactList {
  workspace: WorkspaceRef;
  contacts: ChurnContact[];
}
