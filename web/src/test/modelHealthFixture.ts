// The shape of services/api/model_health_schemas.py (ModelHealth).
export const healthBody = {
  as_of_date: "2026-05-20", window_days: 14,
  kinds: [
    { kind: "consumption", prediction_type: "credit_consumption", model_name: "pae-credit-consumption", alert: true,
      champion: { version: "2", created_at: "2026-05-01T00:00:00", training_data_end: "2026-05-01", promised: { holdout_Ensemble_pooled_wape: 0.1 } },
      challenger: { version: "3", created_at: "2026-05-19T00:00:00", training_data_end: "2026-05-19", promised: {} },
      realised: [{ target_metric: "credits", horizon_bucket: "1d", n: 6, wape: 0.3, error_vs_seasonal_naive: 1.2, coverage: 0.5, peak_hour_hit_rate: null }],
      daily: [{ scored_date: "2026-05-19", n: 2, wape: 0.25, coverage: 0.5 }, { scored_date: "2026-05-20", n: 2, wape: 0.35, coverage: 0.5 }],
      outcomes: [],
      alerts: [{ measure: "wape", target_metric: null, promised_metric: "holdout_Ensemble_pooled_wape", realised: 0.3, promised: 0.1, n: 6, window_days: 14, margin: 0.25, status: "alert" }],
      ab_comparison: { run_date: "2026-05-20", metric: "error_vs_naive", verdict: "no_difference", metric_champion: 0.8, metric_challenger: 0.7, diff: -0.1, ci_low: -0.3, ci_high: 0.1, relative_diff: -0.125, champion_version: "2", challenger_version: "3" } },
    { kind: "churn", prediction_type: "churn_30d", model_name: "pae-user-churn", alert: true, champion: null, challenger: null,
      realised: [], daily: [],
      outcomes: [{ target_metric: "churned", as_of_date: "2026-04-20", scored_date: "2026-05-20", model_version: "5", arm: "champion", n: 4, base_rate: 0.5, mean_probability: 0.475, calibration_in_the_large: -0.025, brier: 0.3375, auc: 0.5, pr_auc: 0.6, precision: 0.5, recall: 0.5 }],
      alerts: [{ measure: "brier", target_metric: "churned", promised_metric: "oot_brier", realised: 0.3375, promised: 0.2, n: 4, window_days: 14, margin: 0.25, status: "alert" }],
      ab_comparison: null },
  ],
};
