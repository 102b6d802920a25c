"""One typed settings object, read from the environment (prefix ``PAE_``), with laptop defaults."""
from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.storage import StoragePath, is_remote, storage_root

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAE_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "PAE_DATABASE_URL"),
        description="PostgreSQL URL. Unset: an embedded server is started under data_dir/pgdata.",
    )
    data_dir: Path = Field(default=REPO_ROOT / ".pae", description="Local state: embedded DB, staging, stores.")
    storage_uri: str | None = Field(default=None, description="Where staging and the offline feature store live: "
                                    "a local folder or s3://bucket/prefix (core.storage). Unset: data_dir.")
    s3_endpoint_url: str | None = Field(
        default=None,
        description="S3-compatible endpoint for s3:// storage (MinIO, moto); credentials from AWS_ACCESS_KEY_ID/"
                    "AWS_SECRET_ACCESS_KEY. Unset: AWS's own.")
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "PAE_MLFLOW_TRACKING_URI")
    )
    late_window_days: int = Field(default=3, ge=0, description="Recent days re-read by extract for late events.")
    load_batch_rows: int = Field(
        default=2_000_000, ge=0,
        description="Valid rows staged from several files before one insert into usage_events: more rows per "
                    "index page touched as the table grows; 0 inserts file by file.")
    backfill_days: int = Field(default=1096, ge=60, description="The first run stages at most this many days "
                               "before the run date (older events stay in the source, unused).")
    churn_window_days: int = Field(default=30, ge=1)
    churn_min_examples: int = Field(default=100, ge=1, description="Min churned and retained training rows.")
    churn_training_snapshots: int = Field(default=8, ge=2, description="Weekly as-of snapshots churn trains on.")
    churn_active_within_days: int = Field(default=28, ge=1, description="Users active within this many days "
                                          "of a snapshot are scored (and labelled in training).")
    churn_min_history_days: int = Field(default=28, ge=1, description="History a training snapshot needs "
                                        "before it (earlier snapshots are dropped).")
    churn_lookback_days: int = Field(default=365, ge=28, le=365, description="Churn scores (and trains on) every "
                                     "user seen within this many days of the as-of date, each with a state "
                                     "(active/lapsing/dormant); the feature store keeps users seen within 365.")
    shards: int = Field(default=4, ge=1, description="Workspace shards mapped onto Airflow workers.")
    threads: int = Field(default=2, ge=1, description="Thread count for OpenMP/BLAS/n_jobs.")
    forecast_horizon_days: int = Field(default=30, ge=1, le=365, description="Days ahead published.")
    forecast_level: int = Field(default=95, ge=50, le=99, description="Published interval confidence (%).")
    forecast_history_days: int = Field(default=730, ge=60, description="History given to forecasters.")
    forecast_refit_totals: bool = Field(default=True, description="Refit members at each backtest cutoff (totals).")
    forecast_robust: bool = Field(default=True, description="Fit members on history cleaned of outliers and "
                                  "holidays; re-apply inferred holiday effects.")
    forecast_holdout_days: int = Field(default=30, ge=7, description="Last days of history held out to score "
                                       "the consumption models (never seen by them).")
    forecast_backtest_horizon_days: int = Field(default=30, ge=1, description="Rolling-origin backtest horizon.")
    forecast_backtest_windows: int = Field(default=4, ge=1, description="Rolling-origin backtest cutoffs.")
    forecast_min_history_days: int = Field(default=28, ge=7, description="Shorter series are left out of the "
                                           "holdout evaluation (they are still forecast).")
    holiday_country: str = Field(default="US", description="Holiday calendar (ISO country, `holidays` package) "
                                 "for calendar features and the forecasters' holiday candidates.")
    forecast_include_prophet: bool = Field(default=False, description="Prophet in the ensemble (0.15 s/series).")
    forecast_include_lstm: bool = Field(default=False, description="Consumption: a global LSTM (PyTorch, "
                                        "models/forecasting/lstm.py) joins the ensemble's members; it gets weight "
                                        "only through the backtest. Needs torch (installed by the Makefile).")
    forecast_lstm_max_windows: int = Field(default=16000, ge=256, description="LSTM: cap on training windows per "
                                           "fit (a seeded sample of all cutoffs).")
    forecast_lstm_max_epochs: int = Field(default=8, ge=1, description="LSTM: cap on epochs per fit (early "
                                          "stopping on a time-ordered validation split ends most fits sooner).")
    promotion_tolerance: float = Field(default=0.25, ge=0, description="Consumption: relative holdout-WAPE slack "
                                       "before a challenger is refused.")
    churn_promotion_tolerance: float = Field(default=0.03, ge=0, description="Churn: relative out-of-time AUC slack.")
    growth_mau_window_days: int = Field(default=28, ge=28, le=31, description="Growth: MAU counts users active in "
                                        "this many days ending d (28: four whole weeks); also the dormant gap after "
                                        "which a returning user counts as reactivated. Changing it changes the "
                                        "workspace_growth feature set: rebuild the features.")
    growth_horizon_days: int = Field(default=90, ge=7, le=365, description="Growth: days projected and published.")
    growth_min_history_days: int = Field(default=56, ge=14, description="Growth: workspaces with fewer days since "
                                         "their first event get no projection (status insufficient_data).")
    growth_min_active_users: int = Field(default=20, ge=1, description="Growth: workspaces with fewer users active "
                                         "in the MAU window get no projection (status insufficient_data).")
    growth_holdout_days: int = Field(default=90, ge=14, le=365, description="Growth: last days held out to score "
                                     "the projections (never seen by the models); the promotion metric.")
    growth_backtest_windows: int = Field(default=3, ge=1, description="Growth: rolling-origin backtest cutoffs "
                                         "(weights and the error paths the scenarios are simulated from).")
    growth_backtest_step_days: int = Field(default=28, ge=7, description="Growth: days between backtest cutoffs "
                                           "(windows overlap when shorter than the horizon).")
    growth_paths: int = Field(default=500, ge=100, le=5000, description="Growth: sample paths per workspace.")
    growth_include_prophet: bool = Field(default=False, description="Growth: Prophet in the ensemble (0.15-0.5 s "
                                         "per series and fit).")
    growth_promotion_tolerance: float = Field(default=0.25, ge=0, description="Growth: relative holdout-MASE slack "
                                              "before a challenger is refused.")
    peak_level: int = Field(default=95, ge=50, le=99, description="Peak usage: interval level (%) of the published "
                            "hourly bounds, the daily peak's interval and the capacity need.")
    peak_headroom: float = Field(default=1.2, ge=1.0, le=10.0, description="Peak usage: capacity need = the upper "
                                 "bound of the day's peak at peak_level times this.")
    peak_horizon_days: int = Field(default=7, ge=1, le=14, description="Peak usage: days forecast (hourly) and "
                                   "published.")
    peak_members: str = Field(default="WeeklyNaive,WeeklyProfile4,LevelProfile", description="Peak usage: ensemble "
                              "members (models/peaks/members.py); MSTL (about 1 s per series and origin) and GlobalGBM "
                              "(about 30 s per fit) may be added on small platforms.")
    peak_backtest_windows: int = Field(default=3, ge=1, le=8, description="Peak usage: weekly rolling-origin "
                                       "backtest windows (the choice per group and the error blocks of the paths).")
    peak_paths: int = Field(default=200, ge=50, le=2000, description="Peak usage: sample paths per workspace.")
    peak_promotion_tolerance: float = Field(default=0.25, ge=0, description="Peak usage: relative holdout "
                                            "daily-peak MAPE slack before a challenger is refused.")
    future_tolerance_seconds: int = Field(default=300, ge=0, description="Clock skew allowed on event_time.")
    earliest_event_date: date = Field(default=date(2000, 1, 1), description="pae load-events rejects events "
                                      "before this date (an event in 1970 would make extract stage 20,000 days).")
    # agent error rates (pipelines/agent_errors, models/error_rates)
    agent_error_horizon_days: int = Field(default=14, ge=2, le=60, description="Agent error rates: days forecast, "
                                          "and the window in which a breach is predicted.")
    agent_error_threshold_multiplier: float = Field(default=3.0, ge=1.0, description="Default threshold of an agent: "
                                                    "this many times its baseline rate ...")
    agent_error_threshold_min_excess: float = Field(default=0.05, ge=0.0, le=1.0, description="... and at least its "
                                                    "baseline plus this (a rate); `pae agent-threshold set` overrides.")
    agent_error_threshold_ceiling: float = Field(default=0.5, gt=0.0, le=1.0, description="No default threshold "
                                                 "above this rate (an agent whose baseline reaches it is chronic).")
    agent_error_min_calls_7d: int = Field(default=20, ge=1, description="Minimum-volume guard: agents with fewer calls "
                                          "in 7 days get no alert level (status insufficient_volume).")
    agent_error_inactive_days: int = Field(default=14, ge=1, description="Agents without calls for this many days are "
                                           "inactive: an alert row says so, no forecast.")
    agent_error_watch_probability: float = Field(default=0.15, gt=0, le=1, description="P(breach within the horizon) "
                                                 "for the watch level.")
    agent_error_warning_probability: float = Field(default=0.35, gt=0, le=1, description="... for the warning level.")
    agent_error_critical_probability: float = Field(default=0.6, gt=0, le=1, description="... for the critical level "
                                                    "(a confirmed breach is always critical).")
    agent_error_training_days: int = Field(default=180, ge=28, description="Days of daily snapshots the escalation "
                                           "model trains on (each labelled by the following horizon).")
    agent_error_validation_days: int = Field(default=28, ge=7, description="Last labelled days held out to choose and "
                                             "score the escalation model out of time.")
    agent_error_retrain_days: int = Field(default=7, ge=1, description="Retrain when the champion's training data "
                                          "ends this many days or more before the run date; otherwise score with it.")
    agent_error_shards: int = Field(default=1, ge=1, description="Workspace shards of the agent error-rate kind (each "
                                    "pools its own agents; one shard pools them all).")
    agent_error_promotion_tolerance: float = Field(default=0.10, ge=0, description="Agent error rates: relative "
                                                   "out-of-time average-precision slack before a challenger is refused.")
    monitor_rescore_days: int = Field(default=7, ge=1, description="Realised accuracy: days re-scored each night "
                                      "(late events change what happened).")
    monitor_window_days: int = Field(default=14, ge=1, description="Realised accuracy window compared with the "
                                     "backtest's promise.")
    monitor_alert_margin: float = Field(default=0.25, ge=0, description="Alert when realised WAPE is worse than "
                                        "the promised holdout WAPE by more than this share.")
    snapshot_retention_days: int = Field(default=400, ge=90, description="Retention: each night (monitor step) "
                                         "deletes analytics.prediction_snapshots rows whose predicted day is more "
                                         "than this many days before the run date (scored accuracy rows stay). Must "
                                         "cover the longest monitoring window plus the 30-day snapshot horizon.")
    job_retention_days: int = Field(default=30, ge=1, description="Retention: each night (monitor step) deletes "
                                    "on-demand jobs (analytics.prediction_jobs) finished (succeeded or failed) more "
                                    "than this many days before the run date; their idempotency keys become free.")
    ab_challenger_share: float = Field(default=0.0, ge=0, le=0.5, description="A/B: share of workspaces (a "
                                       "stable hash, core.arms) served by the challenger version; 0 turns A/B off.")
    ab_salt: str = Field(default="pae-ab", description="A/B: salt of the workspace hash; changing it reshuffles arms.")
    ab_window_days: int = Field(default=28, ge=1, description="A/B: days of realised accuracy compared each night.")
    ab_min_workspace_days: int = Field(default=200, ge=1, description="A/B: scored workspace-days each arm needs "
                                       "before a verdict (fewer: insufficient_data).")
    ab_min_improvement: float = Field(default=0.02, ge=0, description="A/B: a promote decision needs the whole 95% "
                                      "interval of the relative difference at least this much better.")
    ab_bootstrap_samples: int = Field(default=2000, ge=100, description="A/B: workspace-level bootstrap resamples "
                                      "(seeded) for the difference's confidence interval.")
    promotion_min_wins: int = Field(default=6, ge=1, le=8, description="Champion/challenger: backtest windows of 8 "
                                    "the challenger must win (scaled to fewer windows).")
    promotion_min_improvement: float = Field(default=0.02, ge=0, description="Champion/challenger: relative "
                                             "backtest improvement needed (MASE for forecasts, AUC for churn).")
    promotion_coverage_tolerance: float = Field(default=0.05, ge=0, description="Champion/challenger: interval "
                                                "coverage must be within this of the target level.")
    retrain_schedule: str = Field(default="0 3 * * 0", description="Retraining DAG schedule (cron, UTC; weekly on "
                                  "Sundays by default). Nightly runs score with the champion in between.")
    retrain_every_days: int = Field(default=7, ge=1, description="Consumption: a nightly run whose champion was "
                                    "trained on data this many days old or more records a pending 'schedule' retrain.")
    drift_recent_days: int = Field(default=28, ge=7, description="Drift check: recent days whose consumption features "
                                   "are compared (PSI) with the champion's training window.")
    drift_psi_threshold: float = Field(default=0.25, gt=0, description="Drift check: a feature whose PSI exceeds this "
                                       "triggers an early retrain (0.1-0.25 moderate shift, > 0.25 large).")
    api_database_url: str | None = Field(
        default=None,
        description="URL the API connects with. Unset: database_url with the user swapped to the read-only "
                    "role pae_reader and no password (fits trust/peer auth; set it where passwords are needed).",
    )
    api_key_pepper: SecretStr = Field(
        default=SecretStr(""),
        description="Server-side secret in every API key hash (HMAC-SHA256); changing it invalidates all keys. "
                    "Required (the API refuses to start without it) whenever DATABASE_URL is set.",
    )
    api_stale_after_hours: float = Field(default=36, gt=0, description="readyz flags older predictions/runs.")
    api_history_days: int = Field(default=90, ge=0, le=3660, description="Days of history served with forecasts.")
    api_pool_size: int = Field(default=8, ge=1, description="API database connections, and threads using them.")
    api_statement_timeout_ms: int = Field(default=5000, ge=0, description="Per-query limit on API reads (0: none).")
    api_response_cache: bool = Field(default=True, description="Keep GET prediction answers in memory (per worker) "
                                     "until the published data changes (services/api/cache.py).")
    api_cache_version_seconds: float = Field(default=1.0, ge=0, le=60, description="How often the API re-reads the "
                                             "data version: a publish is served within this (0: every request).")
    api_cache_max_mb: int = Field(default=128, ge=1, description="Response cache size per worker process (MiB); "
                                  "least recently used answers go first.")
    api_cache_max_age_seconds: int = Field(default=60, ge=0, description="Cache-Control max-age of cached answers: "
                                           "how long a client may reuse one without asking (then If-None-Match).")
    api_key_cache_seconds: float = Field(default=30.0, ge=0, le=300, description="Verified API keys are remembered "
                                         "this long per worker: a revoked key stops working within it (0: look "
                                         "every key up on every request).")
    api_workers: int = Field(default_factory=lambda: max(1, min(2, os.cpu_count() or 1)), ge=1, le=64,
                             description="uvicorn worker processes of `pae serve` (default: min(2, cores)).")
    job_lease_seconds: int = Field(default=300, ge=5, le=86400, description="On-demand jobs: a worker's lease on a "
                                   "running job, renewed every third of it; past it another worker may take the job.")
    job_max_attempts: int = Field(default=3, ge=1, le=20, description="On-demand jobs: attempts (claims) before a job "
                                  "whose lease keeps expiring is marked failed.")
    job_poll_seconds: float = Field(default=2.0, gt=0, le=300, description="On-demand jobs: `pae worker`'s wait "
                                    "between looks at an empty queue.")
    airflow_api_url: str | None = Field(default=None, description="On-demand jobs: Airflow 3 api-server base URL "
                                        "(e.g. http://127.0.0.1:8080). Set: the API triggers the DAG "
                                        "predictive_analytics_on_demand per job instead of leaving it to `pae worker`.")
    airflow_username: str = Field(default="admin", description="On-demand jobs: user for Airflow's /auth/token.")
    airflow_password: SecretStr = Field(default=SecretStr(""), description="On-demand jobs: password for Airflow's "
                                        "/auth/token.")

    @model_validator(mode="after")
    def _snapshots_cover_the_windows(self) -> "Settings":
        # 30: the longest snapshot horizon (pipelines.monitor.SNAPSHOT_HORIZONS) and churn's outcome window
        need = max(self.monitor_window_days, self.monitor_rescore_days, self.ab_window_days) + 30
        if self.snapshot_retention_days < need:
            raise ValueError(f"snapshot_retention_days ({self.snapshot_retention_days}) must be at least {need}: the "
                             "longest monitoring window (monitor_window_days, monitor_rescore_days, ab_window_days) "
                             "plus the 30-day snapshot horizon")
        return self

    @property
    def embedded_database(self) -> bool:
        """True when no DATABASE_URL is set and the engine runs its own embedded PostgreSQL (the demo)."""
        return not self.database_url

    def require_api_pepper(self) -> None:
        """Refuse to serve keys hashed without a secret outside the embedded demo."""
        if not self.embedded_database and not self.api_key_pepper.get_secret_value():
            raise ValueError("PAE_API_KEY_PEPPER is empty: set it to a long random secret (e.g. "
                             "`python -c 'import secrets; print(secrets.token_hex(32))'`) before serving the API "
                             "against DATABASE_URL; every API key hash uses it")

    @property
    def storage_root(self) -> StoragePath:
        """``storage_uri`` as a Path or an s3 RemotePath; ``data_dir`` when unset."""
        return storage_root(self.storage_uri, self.s3_endpoint_url) if self.storage_uri else self.data_dir

    @property
    def staging_dir(self) -> StoragePath:
        return self.storage_root / "staging"

    @property
    def offline_store_dir(self) -> StoragePath:
        return self.storage_root / "offline_store"

    @property
    def runs_root(self) -> StoragePath:
        """Where the prediction kinds' shard outputs and merged frames are shared between tasks:
        ``<storage_uri>/runs`` when ``storage_uri`` is set, else ``data_dir`` (they are written there already)."""
        return self.storage_root / "runs" if self.storage_uri else self.data_dir

    @property
    def mlflow_artifact_root(self) -> str | None:
        """Where new MLflow experiments keep their artifacts when ``storage_uri`` is remote (``<storage_uri>/mlflow``;
        S3 through ``MLFLOW_S3_ENDPOINT_URL``); None otherwise (``artifact_dir`` on the local disk)."""
        root = self.storage_root
        return str(root / "mlflow") if is_remote(root) else None

    def storage_path(self, uri: str | Path) -> StoragePath:
        """A path a step returned (a local path or an ``s3://`` URI) as a Path or a RemotePath on this endpoint."""
        return storage_root(uri, self.s3_endpoint_url)

    @property
    def rejects_dir(self) -> Path:
        return self.data_dir / "rejects"

    @property
    def pgdata_dir(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return f"sqlite:///{(self.data_dir / 'mlflow.db').resolve()}"

    @property
    def artifact_dir(self) -> Path:
        return self.data_dir / "mlartifacts"


@lru_cache
def get_settings() -> Settings:
    return Settings()


def limit_threads(n: int) -> None:
    """Cap OpenMP/BLAS threads; more threads than cores made XGBoost 80x slower here.

    Idle OpenMP threads are told to sleep (``OMP_WAIT_POLICY=PASSIVE``): on busy shared cores their
    spin-waiting slowed XGBoost fits 10-50x. Effective only before xgboost/sklearn are imported.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
