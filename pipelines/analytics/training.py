"""``train_model``: any registered model type, time-aware cross-validation, tracked in MLflow.

Model types (:data:`MODEL_TYPES`):

* forecasters (``models.forecasting.MODELS``: ``seasonal_naive``, ``ets``, ``arima``, ``theta``, ``mstl``,
  ``damped_ets``, ``prophet``, ``gbm``, ``ensemble``; and ``peak_usage``, the hourly
  ``models.peaks.PeakForecaster``) train on a long frame ``(unique_id, ds, y)``. Cross-validation is
  rolling-origin: window ``w`` trains on each series minus its last ``h + (n_windows - 1 - w) * h`` points
  and forecasts the next ``h``. Metrics: MASE (mean and median), WAPE, sMAPE, coverage of the 80/95% bands.
* churn classifiers (``models.churn.CLASSIFIERS`` as ``churn_<kind>``) train on labelled snapshots
  (``workspace_id``, ``user_id``, ``as_of``, numeric features, ``churned``; see
  :func:`pipelines.analytics.features.churn_training_data`). Cross-validation is out of time: each of the
  latest ``n_windows`` as-of dates is scored by a model trained on the snapshots at least ``gap_days`` (the
  label window, 30) before it. Metrics: AUC, PR-AUC, Brier, ECE, top-decile lift (means over folds).

The final model is fitted on all the data and logged to MLflow (experiment ``notebook-models`` unless
given) with its parameters, the CV metrics, the CV predictions and windows, and the model as a pyfunc from
code (``pyfunc_forecast.py``: the configured forecaster, fitted on the history it is given, as the nightly
consumption model; ``pyfunc_churn.py``: the fitted classifier saved as JSON/skops, no pickle).
"""
from __future__ import annotations

import inspect
import json
import math
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.settings import REPO_ROOT, Settings

EXPERIMENT = "notebook-models"
FORECAST, CHURN = "forecast", "churn"
LEVELS = (80, 95)
CHURN_LABEL = "churned"
CHURN_METRICS = ("auc", "pr_auc", "brier", "ece", "top_decile_lift", "base_rate")
SEED_PARAMETERS = ("seed", "random_state")
# What the logged models import (models/), pinned to the versions installed here; listing them saves MLflow's
# requirement inference (a subprocess, ~9 s per model).
MODEL_PACKAGES = ("mlflow", "pandas", "numpy", "scipy", "scikit-learn", "xgboost-cpu", "statsforecast", "statsmodels",
                  "skops", "holidays", "pyarrow")


@dataclass(frozen=True)
class ModelType:
    """A trainable model type: its family, the class it builds and what it is."""

    name: str
    family: str  # FORECAST | CHURN
    cls: type
    description: str

    def hyperparameters(self) -> dict[str, Any]:
        """Constructor arguments and their defaults (introspected from the class)."""
        params = inspect.signature(self.cls.__init__).parameters
        return {k: (None if p.default is inspect.Parameter.empty else p.default) for k, p in params.items()
                if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def _model_types() -> dict[str, ModelType]:
    from models.churn import CLASSIFIERS
    from models.forecasting import MODELS
    from models.peaks import PeakForecaster

    out = {name: ModelType(name, FORECAST, cls, f"forecaster {cls.__name__} (models.forecasting)")
           for name, cls in MODELS.items()}
    out["peak_usage"] = ModelType("peak_usage", FORECAST, PeakForecaster,
                                  "hourly peak-usage ensemble (models.peaks.PeakForecaster); hourly series only")
    out.update({f"churn_{kind}": ModelType(f"churn_{kind}", CHURN, cls, f"churn classifier {cls.__name__}")
                for kind, cls in CLASSIFIERS.items()})
    return out


MODEL_TYPES: dict[str, ModelType] = _model_types()


@dataclass
class TrainedModel:
    """What :func:`train_model` returns.

    Attributes:
        model_type: The registered model type.
        run_id: The MLflow run holding params, metrics, CV tables and the model.
        model_uri: ``runs:/<run_id>/model``-style URI; ``mlflow.pyfunc.load_model(model_uri)`` loads it.
        metrics: Cross-validation metrics (out of sample), e.g. ``cv_mase_median`` or ``cv_auc``.
        hyperparameters: The constructor arguments used (defaults filled in).
        cv_windows: One row per CV window (and series, for forecasters): ``train_start``, ``train_end``,
            ``test_start``, ``test_end``; every test window starts after its training window ends.
        cv_predictions: The out-of-sample predictions the metrics come from.
        model: The model fitted on all the data (in memory, for the notebook).
        forecast: Forecasters: the final model's forecast of the ``h`` steps after the data.
    """

    model_type: str
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    hyperparameters: dict[str, Any]
    cv_windows: pd.DataFrame
    cv_predictions: pd.DataFrame
    model: Any = field(repr=False, default=None)
    forecast: pd.DataFrame | None = field(repr=False, default=None)


def _check_model_type(model_type: str) -> ModelType:
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; valid model types: {list(MODEL_TYPES)}")
    return MODEL_TYPES[model_type]


def _check_hyperparameters(spec: ModelType, hyperparameters: dict[str, Any] | None, seed: int) -> dict[str, Any]:
    """User hyperparameters, checked against the constructor, with the seed filled in."""
    if hyperparameters is not None and not isinstance(hyperparameters, dict):
        raise ValueError(f"hyperparameters must be a dict, got {type(hyperparameters).__name__}")
    given = dict(hyperparameters or {})
    valid = spec.hyperparameters()
    unknown = sorted(set(given) - set(valid))
    if unknown:
        raise ValueError(f"unknown hyperparameter(s) {unknown} for model type {spec.name!r}; valid hyperparameters: "
                         f"{sorted(valid)}")
    for name in SEED_PARAMETERS:
        if name in valid and name not in given:
            given[name] = seed
    try:
        json.dumps(given)
    except TypeError as exc:
        raise ValueError(f"hyperparameters must be JSON values (numbers, strings, lists, dicts): {exc}") from None
    return given


def build_model(model_type: str, hyperparameters: dict[str, Any]) -> Any:
    """An unfitted model of ``model_type``; ``ensemble`` takes ``members`` as model type names."""
    spec = _check_model_type(model_type)
    params = dict(hyperparameters)
    if model_type == "ensemble" and params.get("members") is not None:
        names = params["members"]
        bad = [m for m in names if m not in MODEL_TYPES or MODEL_TYPES[m].family != FORECAST
               or m in ("ensemble", "peak_usage")]
        if bad:
            raise ValueError(f"ensemble members {bad} are not member model types; valid: "
                             f"{[n for n, t in MODEL_TYPES.items() if t.family == FORECAST and n not in ('ensemble', 'peak_usage')]}")
        params["members"] = [build_model(m, {}) for m in names]
    if model_type == "peak_usage" and "members" in params:
        params["members"] = tuple(params["members"])
    return spec.cls(**params)


# ------------------------------------------------------------------------------------------------ forecasters
def _forecast_frame(data: pd.DataFrame, freq: str | None) -> tuple[pd.DataFrame, str]:
    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"training_data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in ("unique_id", "ds", "y") if c not in data.columns]
    if missing:
        raise ValueError(f"forecaster training data lacks column(s) {missing}; give a long frame with columns "
                         f"['unique_id', 'ds', 'y'] (got {list(data.columns)})")
    df = data[["unique_id", "ds", "y"]].copy()
    df["ds"] = pd.to_datetime(df["ds"])
    if df.empty:
        raise ValueError("training_data has no rows")
    if freq is None:
        steps = df.sort_values(["unique_id", "ds"]).groupby("unique_id")["ds"].diff().dropna()
        step = steps.min() if len(steps) else pd.Timedelta(days=1)
        freq = "h" if step < pd.Timedelta(days=1) else "D"
    if freq not in ("D", "h"):
        raise ValueError(f"freq must be 'D' (daily) or 'h' (hourly), got {freq!r}")
    return df.sort_values(["unique_id", "ds"]).reset_index(drop=True), freq


def _rolling_origin(model: Any, df: pd.DataFrame, freq: str, h: int, n_windows: int) -> pd.DataFrame:
    """Rolling-origin CV for a model with ``fit(df, freq)`` / ``predict(h, level)`` (the same windows as
    ``models.forecasting.cross_validation``): frame ``(unique_id, ds, cutoff, y, <name>, <name>-lo/hi-<lv>)``."""
    name = getattr(model, "name", type(model).__name__)
    position = df.groupby("unique_id").cumcount(ascending=False)  # 0 = a series' last point
    parts = []
    for w in range(n_windows):
        drop = h + (n_windows - 1 - w) * h
        train, test = df[position >= drop], df[(position < drop) & (position >= drop - h)]
        if train.empty:
            continue
        fitted = type(model)(**{k: getattr(model, k) for k in inspect.signature(type(model).__init__).parameters
                                if k != "self" and hasattr(model, k)}).fit(train, freq=freq)
        out = None
        for lv in LEVELS:
            fc = fitted.predict(h=h, level=lv).rename(columns={"yhat": name, "yhat_lower": f"{name}-lo-{lv}",
                                                               "yhat_upper": f"{name}-hi-{lv}"})
            out = fc if out is None else out.merge(fc.drop(columns=[name]), on=["unique_id", "ds"])
        cutoff = train.groupby("unique_id")["ds"].max().rename("cutoff")
        out = out.merge(cutoff, left_on="unique_id", right_index=True).merge(test, on=["unique_id", "ds"])
        parts.append(out)
    if not parts:
        raise ValueError(f"no series has more than {h * n_windows} points; lower horizon or n_windows")
    cv = pd.concat(parts, ignore_index=True)
    first = ["unique_id", "ds", "cutoff", "y"]
    return cv[first + [c for c in cv.columns if c not in first]]


def _forecast_cv(model: Any, df: pd.DataFrame, freq: str, h: int, n_windows: int) -> tuple[pd.DataFrame, dict]:
    from models.forecasting import cross_validation, evaluate
    from models.forecasting.base import BaseForecaster

    if isinstance(model, BaseForecaster):
        cv = cross_validation(df, [model.clone()], h, n_windows=n_windows, freq=freq, level=list(LEVELS))
    else:
        cv = _rolling_origin(model, df, freq, h, n_windows)
    summary = evaluate(cv, df, freq).summary.iloc[0]
    metrics = {f"cv_{k}": float(summary[k]) for k in ("mase", "mase_median", "wape", "smape", "mape",
                                                      *(f"coverage_{lv}" for lv in LEVELS)) if k in summary}
    metrics["cv_rows"] = float(len(cv))
    return cv, metrics


def _forecast_windows(cv: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    starts = df.groupby("unique_id")["ds"].min().rename("train_start")
    win = cv.groupby(["unique_id", "cutoff"], sort=True)["ds"].agg(test_start="min", test_end="max").reset_index()
    win = win.rename(columns={"cutoff": "train_end"}).merge(starts, left_on="unique_id", right_index=True)
    win["window"] = win.groupby("unique_id").cumcount()
    return win[["unique_id", "window", "train_start", "train_end", "test_start", "test_end"]]


# ------------------------------------------------------------------------------------------------ churn
def _churn_frame(data: pd.DataFrame) -> Any:
    from models.churn import KEYS, TrainingSet

    if not isinstance(data, pd.DataFrame):
        raise ValueError(f"training_data must be a pandas DataFrame, got {type(data).__name__}")
    missing = [c for c in (*KEYS, "as_of", CHURN_LABEL) if c not in data.columns]
    if missing:
        raise ValueError(f"churn training data lacks column(s) {missing}; give labelled snapshots with "
                         f"{[*KEYS, 'as_of']}, numeric features and {CHURN_LABEL!r} "
                         "(pipelines.analytics.features.churn_training_data makes them)")
    frame = data.sort_values("as_of", kind="stable").reset_index(drop=True)
    train = TrainingSet.from_frame(frame, label=CHURN_LABEL)
    if train.X.shape[1] == 0:
        raise ValueError("churn training data has no numeric feature columns")
    return train


def _churn_cv(model_type: str, params: dict, train, n_windows: int, gap_days: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    from models.churn import evaluate

    spec = MODEL_TYPES[model_type]
    as_of = train.as_of.to_numpy()
    y = train.y.to_numpy().astype(int)
    rows, preds = [], []
    for fold_date in train.dates[-n_windows:]:
        fit = as_of < np.datetime64(fold_date) - np.timedelta64(gap_days, "D")
        test = as_of == np.datetime64(fold_date)
        if len(np.unique(y[fit])) < 2 or len(np.unique(y[test])) < 2:
            continue
        clf = spec.cls(**params).fit(train.X[fit], y[fit])
        p = clf.predict_proba(train.X[test])[:, 1]
        scores = evaluate(y[test], p)
        rows.append({"window": len(rows), "train_start": train.as_of[fit].min(), "train_end": train.as_of[fit].max(),
                     "test_start": pd.Timestamp(fold_date), "test_end": pd.Timestamp(fold_date),
                     "n_train": int(fit.sum()), "n_test": int(test.sum()), **scores})
        preds.append(pd.DataFrame({**{k: train.keys[k].to_numpy()[test] for k in train.keys.columns},
                                   "as_of": pd.Timestamp(fold_date), "window": len(rows) - 1, "y": y[test],
                                   "churn_probability": p}))
    if not rows:
        raise ValueError(f"no out-of-time fold: none of the latest {n_windows} as-of dates has both classes and "
                         f"training snapshots of both classes at least {gap_days} days before it; add snapshots "
                         "or lower gap_days")
    windows = pd.DataFrame(rows)
    metrics = {f"cv_{m}": float(np.nanmean(windows[m])) for m in CHURN_METRICS if windows[m].notna().any()}
    metrics["cv_folds"] = float(len(windows))
    return windows, pd.concat(preds, ignore_index=True), metrics


# ------------------------------------------------------------------------------------------------ MLflow
def _log(settings: Settings, experiment: str, model_type: str, params: dict, metrics: dict, tags: dict,
         tables: dict[str, pd.DataFrame], python_model: str, artifacts: dict[str, str], signature: Any) -> tuple[str, str]:
    from pipelines.registry import use_experiment

    use_experiment(settings, experiment)
    import mlflow

    with mlflow.start_run(run_name=f"{model_type} (train_model)") as run, tempfile.TemporaryDirectory() as tmp:
        mlflow.set_tags({"pae.model_type": model_type, "pae.entry_point": "PredictiveAnalytics.train_model", **tags})
        mlflow.log_params({k: json.dumps(v) if not isinstance(v, str) else v for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if math.isfinite(v)})
        for name, frame in tables.items():
            path = Path(tmp) / f"{name}.csv"
            frame.to_csv(path, index=False)
            mlflow.log_artifact(str(path), "cv" if name.startswith("cv_") else None)
        with warnings.catch_warnings():  # "an input example was not provided": the signature is given
            warnings.simplefilter("ignore", UserWarning)
            info = mlflow.pyfunc.log_model(name="model", python_model=str(Path(__file__).with_name(python_model)),
                                           artifacts=artifacts, code_paths=[str(REPO_ROOT / "models")],
                                           signature=signature, pip_requirements=_pip_requirements(model_type))
        return run.info.run_id, info.model_uri


def _pip_requirements(model_type: str) -> list[str]:
    from importlib.metadata import version

    extra = ("prophet", "cmdstanpy") if model_type in ("prophet", "ensemble") else ()
    return [f"{name}=={version(name)}" for name in (*MODEL_PACKAGES, *extra)]


def _signature(model_input: pd.DataFrame, output: pd.DataFrame, params: dict | None) -> Any:
    """The pyfunc's signature; with ``params`` (e.g. ``h``) callers can pass them at predict time."""
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # integer columns "cannot represent missing values": they are features
        return infer_signature(model_input, output, params=params)


def train_model(model_type: str, training_data: pd.DataFrame, hyperparameters: dict[str, Any] | None = None, *,
                settings: Settings | None = None, horizon: int | None = None, n_windows: int = 3,
                freq: str | None = None, gap_days: int = 30, seed: int = 0,
                experiment: str = EXPERIMENT) -> TrainedModel:
    """Cross-validate ``model_type`` on ``training_data`` out of sample, fit it on all of it, log it to MLflow.

    Args:
        model_type: A key of :data:`MODEL_TYPES`.
        training_data: Forecasters: ``(unique_id, ds, y)``; churn: labelled snapshots (module docstring).
        hyperparameters: Constructor arguments of the model type's class (JSON values); ``seed`` /
            ``random_state`` default to ``seed``.
        settings: Where MLflow tracks (``settings.tracking_uri``, artifacts under ``settings.artifact_dir``).
        horizon: Forecasters: steps per CV window and of the final forecast (default 30 days / 168 hours).
        n_windows: CV windows (rolling origins, or out-of-time folds for churn).
        freq: Forecasters: ``D`` or ``h`` (default: inferred from the timestamps).
        gap_days: Churn: days between a fold's training snapshots and its test date (the label window).
        seed: Seed of every random draw.
        experiment: MLflow experiment name.

    Raises:
        ValueError: Unknown model type or hyperparameter (the valid ones listed), bad data or arguments.
    """
    spec = _check_model_type(model_type)
    params = _check_hyperparameters(spec, hyperparameters, seed)
    if not isinstance(n_windows, int) or n_windows < 1:
        raise ValueError(f"n_windows must be a positive integer, got {n_windows!r}")
    if not isinstance(gap_days, int) or gap_days < 0:
        raise ValueError(f"gap_days must be an integer >= 0, got {gap_days!r}")
    settings = settings or Settings()
    with tempfile.TemporaryDirectory() as tmp:
        if spec.family == FORECAST:
            return _train_forecaster(spec, params, training_data, settings, horizon, n_windows, freq, experiment,
                                     Path(tmp))
        return _train_churn(spec, params, training_data, settings, n_windows, gap_days, experiment, Path(tmp))


def _train_forecaster(spec: ModelType, params: dict, data: pd.DataFrame, settings: Settings, horizon: int | None,
                      n_windows: int, freq: str | None, experiment: str, tmp: Path) -> TrainedModel:
    df, freq = _forecast_frame(data, freq)
    h = horizon or (30 if freq == "D" else 168)
    if not isinstance(h, int) or h < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    model = build_model(spec.name, params)
    cv, metrics = _forecast_cv(model, df, freq, h, n_windows)
    windows = _forecast_windows(cv, df)
    model.fit(df, freq=freq)
    forecast = model.predict(h=h, level=95)
    config = tmp / "config.json"
    config.write_text(json.dumps({"model_type": spec.name, "hyperparameters": params, "freq": freq, "h": h}))
    run_id, uri = _log(settings, experiment, spec.name,
                       {"model_type": spec.name, **{f"hp_{k}": v for k, v in params.items()}, "freq": freq,
                        "horizon": h, "n_windows": n_windows, "n_series": int(df["unique_id"].nunique()),
                        "train_start": str(df["ds"].min()), "train_end": str(df["ds"].max())},
                       metrics, {"pae.family": FORECAST},
                       {"cv_predictions": cv, "cv_windows": windows, "forecast": forecast},
                       "pyfunc_forecast.py", {"config": str(config)},
                       _signature(df.head(5), forecast.head(5), {"h": h, "level": 95}))
    return TrainedModel(spec.name, run_id, uri, metrics, {**spec.hyperparameters(), **params}, windows, cv, model,
                        forecast)


def _train_churn(spec: ModelType, params: dict, data: pd.DataFrame, settings: Settings, n_windows: int,
                 gap_days: int, experiment: str, tmp: Path) -> TrainedModel:
    train = _churn_frame(data)
    windows, preds, metrics = _churn_cv(spec.name, params, train, n_windows, gap_days)
    y = train.y.to_numpy().astype(int)
    if len(np.unique(y)) < 2:
        raise ValueError("churn training data holds one class only; it needs churned and retained rows")
    model = spec.cls(**params).fit(train.X, y)
    bundle = tmp / "bundle"
    bundle.mkdir()
    manifest = {"format": "pae-notebook-churn/1", "model_type": spec.name,
                "feature_columns": list(train.X.columns), "classifier": model.save(bundle, "classifier")}
    (bundle / "manifest.json").write_text(json.dumps(manifest, default=str))
    run_id, uri = _log(settings, experiment, spec.name,
                       {"model_type": spec.name, **{f"hp_{k}": v for k, v in params.items()}, "n_windows": n_windows,
                        "gap_days": gap_days, "n_rows": len(y), "n_features": train.X.shape[1],
                        "train_start": str(train.as_of.min().date()), "train_end": str(train.as_of.max().date())},
                       metrics, {"pae.family": CHURN}, {"cv_predictions": preds, "cv_windows": windows},
                       "pyfunc_churn.py", {"bundle": str(bundle)},
                       _signature(train.X.head(5), pd.DataFrame({"churn_probability": [0.5]}), None))
    return TrainedModel(spec.name, run_id, uri, metrics, {**spec.hyperparameters(), **params}, windows, preds, model)

