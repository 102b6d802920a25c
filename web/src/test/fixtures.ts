import type { ChurnRiskPage, ConsumptionForecastResponse, UserChurnRisk } from "../lib/types";

export const WS = { id: "8a1e5c1e-0000-5000-8000-000000000001", external_id: "acme" };

function day(i: number): string {
  const d = new Date(Date.UTC(2026, 5, 30) + i * 86_400_000);
  return d.toISOString().slice(0, 10);
}

export function consumptionFixture(days = 30): ConsumptionForecastResponse {
  const predictions = Array.from({ length: days }, (_, i) => ({
    date: day(i + 1), days: 1, predicted_value: 100 + i, lower: 80 + i, upper: 130 + i,
  }));
  return {
    workspace: WS,
    as_of_date: day(0),
    model_version: "7",
    confidence_level: 0.95,
    granularity: "day",
    days_ahead: days,
    predictions,
    breakdown: [
      { dimension: "chat", predictions: predictions.map((p) => ({ ...p, predicted_value: p.predicted_value * 0.7, lower: p.lower * 0.7, upper: p.upper * 0.7 })) },
      { dimension: "search", predictions: predictions.map((p) => ({ ...p, predicted_value: p.predicted_value * 0.3, lower: p.lower * 0.3, upper: p.upper * 0.3 })) },
    ],
    cumulative: predictions.map((p, i) => ({ ...p, days: i + 1, predicted_value: (i + 1) * 110, lower: (i + 1) * 100, upper: (i + 1) * 120 })),
    history: Array.from({ length: 60 }, (_, i) => ({ date: day(i - 59), days: 1, value: 90 + (i % 7) })),
  };
}

export function user(ext: string, p: number, extra: Partial<UserChurnRisk> = {}): UserChurnRisk {
  return {
    user_id: `00000000-0000-5000-8000-${String(ext.length * 1000 + ext.charCodeAt(0)).padStart(12, "0")}${ext}`.slice(0, 36),
    user_external_id: ext,
    churn_probability: p,
    risk_score: p * 100,
    risk_factors: [
      { feature: "recency_days", driver: "recency", contribution: p, value: 19, direction: "raises risk", text: "no activity for 19 days" },
      { feature: "active_days_28", driver: "activity_drop", contribution: p / 2, value: 2, direction: "raises risk", text: "active on 2 of the last 28 days" },
      { feature: "silence_ratio", driver: "state", contribution: 0, value: 3, direction: "state", text: "silent for 3 usual gaps" },
    ],
    recommended_actions: [{ action_id: "re_engagement_email", title: "Re-engagement email", reason: "no activity for 19 days", priority: "high", drivers: ["recency_days"] }],
    days_until_churn: p > 0.5 ? 9 : null,
    model_version: "3",
    state: p > 0.5 ? "lapsing" : "active",
    ...extra,
  };
}

export function churnPage(users: UserChurnRisk[], total = users.length): ChurnRiskPage {
  return { workspace: WS, prediction_date: "2026-06-30", risk_threshold: 0, total, limit: 1000, offset: 0, users };
}

/** A fetch stand-in: answers by path, records every call. */
export function fakeFetch(routes: Record<string, (url: URL, init: RequestInit) => [number, unknown]>) {
  const calls: { url: string; init: RequestInit }[] = [];
  const impl = async (input: RequestInfo | URL, init: RequestInit = {}) => {
    const url = new URL(String(input), "http://dash.test");
    calls.push({ url: url.toString(), init });
    const route = routes[url.pathname];
    const [status, body] = route ? route(url, init) : [404, { detail: "Not Found" }];
    return new Response(body === undefined ? "" : JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  };
  return { impl: impl as typeof fetch, calls };
}
