"""Agent error rates: baselines shrunk toward workspace and feature, breaches, escalation features, the
escalation model, two-regime rate forecasts with intervals, alerts in words, and the baseline alerting rules.

Pure: dataframes and arrays in and out; no database, MLflow or settings (``pipelines/agent_errors`` wires it).
"""
from models.error_rates.alerts import LEVELS, STATUSES, AlertPolicy, build_alerts
from models.error_rates.baseline import BaselineParams, baselines
from models.error_rates.breaches import ThresholdPolicy, find_breaches, future_breach, thresholds
from models.error_rates.engine import (
    WARMUP_DAYS,
    EngineConfig,
    Prepared,
    Trained,
    backtest_forecast,
    prepare,
    score,
    snapshot_rows,
    train,
)
from models.error_rates.escalation import CLASSIFIER_KINDS, EscalationModel, evaluate
from models.error_rates.features import FEATURES, MODEL_FEATURES, daily_features, frame_at
from models.error_rates.forecast import PathParams
from models.error_rates.panel import AgentPanel, build_panel

__all__ = [
    "CLASSIFIER_KINDS", "FEATURES", "LEVELS", "MODEL_FEATURES", "STATUSES", "WARMUP_DAYS", "AgentPanel",
    "AlertPolicy", "BaselineParams", "EngineConfig", "EscalationModel", "PathParams", "Prepared",
    "ThresholdPolicy", "Trained", "backtest_forecast", "baselines", "build_alerts", "build_panel",
    "daily_features", "evaluate", "find_breaches", "frame_at", "future_breach", "prepare", "score",
    "snapshot_rows", "thresholds", "train",
]
