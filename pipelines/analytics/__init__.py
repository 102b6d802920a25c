"""Notebook-facing analytics: ``PredictiveAnalytics`` (the seed's service) with ``extract_features`` and
``train_model`` on top of the API's read methods.

``features`` builds the declared feature sets from an events frame with the nightly run's code; ``training``
trains any registered model type with time-aware cross-validation and logs it to MLflow; ``service`` holds
the class. See README, "Notebooks".
"""
from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    """``from pipelines.analytics import PredictiveAnalytics`` (imported on first use: it pulls in the API's
    read side, which the feature and training modules do not need)."""
    if name == "PredictiveAnalytics":
        from pipelines.analytics.service import PredictiveAnalytics

        return PredictiveAnalytics
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
