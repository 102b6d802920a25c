"""One typed settings object, read from the environment (prefix ``PAE_``), with laptop defaults."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PAE_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DATABASE_URL", "PAE_DATABASE_URL"),
        description="PostgreSQL URL. Unset: an embedded server is started under data_dir/pgdata.",
    )
    data_dir: Path = Field(default=REPO_ROOT / ".pae", description="Local state: embedded DB, staging, stores.")
    mlflow_tracking_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("MLFLOW_TRACKING_URI", "PAE_MLFLOW_TRACKING_URI")
    )
    late_window_days: int = Field(default=3, ge=0, description="Recent days re-read by extract for late events.")
    churn_window_days: int = Field(default=30, ge=1)
    churn_min_examples: int = Field(default=100, ge=1, description="Min churned and retained training rows.")
    shards: int = Field(default=4, ge=1, description="Workspace shards mapped onto Airflow workers.")
    threads: int = Field(default=2, ge=1, description="Thread count for OpenMP/BLAS/n_jobs.")
    future_tolerance_seconds: int = Field(default=300, ge=0, description="Clock skew allowed on event_time.")

    @property
    def staging_dir(self) -> Path:
        return self.data_dir / "staging"

    @property
    def offline_store_dir(self) -> Path:
        return self.data_dir / "offline_store"

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
    """Cap OpenMP/BLAS threads; more threads than cores made XGBoost 80x slower here."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ.setdefault(var, str(n))
