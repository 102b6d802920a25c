"""Inputs of the agent error-rate kind: its settings as an engine configuration, one shard's panel of daily
agent history from the feature store's daily tables, and the operators' threshold overrides."""
from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from core.ids import entity_uuid
from core.settings import Settings
from core.shards import in_shard
from models.error_rates import AgentPanel, AlertPolicy, EngineConfig, ThresholdPolicy, build_panel
from pipelines.features.builders import AGENT_LOOKBACK_DAYS
from pipelines.features.store import load_daily_aggregates

MODEL_NAME = "pae-agent-error-rates"
EXPERIMENT = "agent-error-rates"


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        horizon=settings.agent_error_horizon_days,
        training_days=settings.agent_error_training_days,
        validation_days=settings.agent_error_validation_days,
        threads=settings.threads,
        thresholds=ThresholdPolicy(multiplier=settings.agent_error_threshold_multiplier,
                                   min_excess=settings.agent_error_threshold_min_excess,
                                   ceiling=settings.agent_error_threshold_ceiling),
        alerts=AlertPolicy(watch=settings.agent_error_watch_probability,
                           warning=settings.agent_error_warning_probability,
                           critical=settings.agent_error_critical_probability,
                           min_calls_7d=settings.agent_error_min_calls_7d,
                           inactive_days=settings.agent_error_inactive_days),
    )


def config_params(settings: Settings) -> dict:
    """The settings a model depends on (logged, fingerprinted, and compared before reusing a champion)."""
    return {k: v for k, v in settings.model_dump().items()
            if k.startswith("agent_error_") and k not in ("agent_error_retrain_days", "agent_error_promotion_tolerance")}


def load_panel(settings: Settings, as_of: date, shard: int, n_shards: int, days: int) -> AgentPanel:
    """The shard's agents with calls in the ``days`` days to ``as_of`` (possibly none), daily, with their
    workspaces' failing-user counts and each agent's first call in all history (for its age)."""
    store = settings.offline_store_dir
    agg = load_daily_aggregates(store, as_of, only=("agent_feature", "workspace_errors"))
    ad, we = agg.agent_feature, agg.workspace_errors
    ad = ad[in_shard(ad["workspace_id"], shard, n_shards)]
    first = ad[ad["calls"] > 0].groupby(["workspace_id", "agent_id"], observed=True)["day"].min()
    start = as_of - timedelta(days=days - 1)
    window = ad[ad["day"] >= pd.Timestamp(start)]
    return build_panel(window, start, as_of, we[we["day"] >= pd.Timestamp(start)],
                       first_seen=first.rename("first_day").reset_index())


def scored_rows(panel: AgentPanel) -> np.ndarray:
    """Agents scored: calls within ``AGENT_LOOKBACK_DAYS`` of the panel's end (the ``agent_daily`` population)."""
    recent = panel.calls[:, max(0, panel.n_days - AGENT_LOOKBACK_DAYS):].sum(axis=1) > 0
    return np.flatnonzero(recent)


def load_overrides(engine: Engine, panel: AgentPanel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per agent of the panel: override rate, override multiplier (NaN: none) and the threshold's source."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("select workspace_id::text, agent_id::text, threshold_rate::float8,"
                                    " multiplier::float8 from analytics.agent_error_thresholds")).all()
    by_key = {(w, a): (r, m) for w, a, r, m in rows}
    rate, mult = np.full(panel.n_agents, np.nan), np.full(panel.n_agents, np.nan)
    for i, (ws, ag) in enumerate(zip(panel.workspace_id, panel.agent_id)):
        hit = by_key.get((str(entity_uuid("workspace", ws)), str(entity_uuid("agent", ag))))
        if hit:
            rate[i] = np.nan if hit[0] is None else hit[0]
            mult[i] = np.nan if hit[1] is None else hit[1]
    source = np.where(np.isfinite(rate), "override_rate", np.where(np.isfinite(mult), "override_multiplier", "default"))
    return rate, mult, source
