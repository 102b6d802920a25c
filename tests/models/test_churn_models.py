"""Churn model library: classifiers, calibration, time-based selection, explanations, bundle.

The words and actions made from the model's drivers are tested in ``test_churn_wording.py``; here
they are only checked on the model's real output.

Data is a seeded synthetic TrainingSet built here (weekly snapshots, realistic ``user_behaviour``
columns) whose label follows a known logistic model of a few features plus noise.
"""
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on busy shared cores spinning made fits 10-50x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from models.churn import (  # noqa: E402
    CLASSIFIER_KINDS,
    ChurnModel,
    InsufficientDataError,
    TimeToChurnModel,
    TrainingSet,
    calibration_plot,
    check_sufficient,
    evaluate,
    expected_calibration_error,
    explain_drivers,
    fit_calibrated,
    inactivity_targets,
    make_classifier,
    risk_score,
    roc_plot,
    select_model,
)
from pipelines.churn.wording import (  # noqa: E402
    ACTIONS,
    DRIVER_ACTIONS,
    SCORE_COLUMNS,
    format_value,
    with_words,
)
from pipelines.features.sets import USER_BEHAVIOUR  # noqa: E402

WINDOW = 30


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _rhythm_columns(rng: np.random.Generator, ad365: np.ndarray, recency: np.ndarray, n: int) -> dict:
    """The v2 rhythm columns, consistent with the active days and recency drawn above."""
    from models.churn import MBGNBD, usual_gap

    ad365 = np.maximum(ad365, 1)
    gap_sum = np.minimum(364, (ad365 - 1) * rng.uniform(1.0, 2.0, n))
    ws_gap = np.full(n, 2.5)
    usual = usual_gap(gap_sum, ad365 - 1, ws_gap)
    first_ago = recency + gap_sum
    return {
        "active_days_365": ad365, "gap_mean_days": np.where(ad365 > 1, gap_sum / np.maximum(ad365 - 1, 1), usual),
        "gap_cv": rng.gamma(2.0, 0.4, n), "longest_gap_days": np.round(gap_sum / np.maximum(ad365 - 1, 1) * 4),
        "ws_usual_gap_days": ws_gap, "usual_gap_days": usual, "silence_ratio": recency / usual,
        "p_alive": MBGNBD(0.8, 2.0, 1.0, 30.0).p_alive(ad365 - 1, first_ago - recency, first_ago),
    }


def make_snapshots(n_users: int = 2500, n_dates: int = 6, seed: int = 0) -> tuple[TrainingSet, np.ndarray]:
    """Weekly snapshots of ``n_users`` users; returns the set and each row's true churn probability."""
    rng = np.random.default_rng(seed)
    users = np.array([f"u{i}" for i in range(n_users)])
    workspaces = np.array([f"w{i % max(1, n_users // 8)}" for i in range(n_users)])
    level = rng.normal(-0.3, 1.0, n_users)
    error_p = rng.beta(1.0, 25.0, n_users)
    breadth = 1 + rng.binomial(5, 0.4, n_users)
    tenure0 = 20 + rng.geometric(1 / 200, n_users)
    dates = pd.date_range("2025-01-05", periods=n_dates, freq="7D")
    frames, truth = [], []
    for t, as_of in enumerate(dates):
        level = level + rng.normal(0, 0.25, n_users)
        rate, prev_rate = _sigmoid(level), _sigmoid(level + rng.normal(0.3, 0.7, n_users))
        weeks = np.column_stack(
            [rng.binomial(7, rate) for _ in range(4)] + [rng.binomial(7, prev_rate) for _ in range(4)]
        )
        ad28, adprev = weeks[:, :4].sum(1), rng.binomial(28, prev_rate)
        ad90 = ad28 + adprev + rng.binomial(34, prev_rate)
        tenure = tenure0 + 7 * t
        recency = np.minimum(rng.geometric(np.clip(rate, 0.02, 1)) - 1, tenure - 1)
        calls28 = np.round(ad28 * rng.lognormal(2.0, 0.8, n_users))
        calls7 = np.round(weeks[:, 0] * rng.lognormal(2.0, 0.8, n_users))
        credits28 = np.round(calls28 * rng.lognormal(1.0, 0.5, n_users), 1)
        errors28 = rng.binomial(calls28.astype(int), error_p)
        error_rate = np.divide(errors28, calls28, out=np.zeros(n_users), where=calls28 > 0)
        used90 = breadth
        used28 = np.minimum(used90, rng.binomial(used90, np.clip(rate + 0.2, 0, 1)))
        ws_trend = rng.lognormal(0.0, 0.3, n_users)
        ws_active = 1 + rng.binomial(8, 0.6, n_users)
        xc = -np.arange(8) - (-np.arange(8)).mean()  # w0 is the latest week
        slope = (weeks - weeks.mean(1, keepdims=True)) @ xc / (xc @ xc)
        frame = pd.DataFrame({
            "workspace_id": workspaces, "user_id": users, "as_of": as_of,
            "tenure_days": tenure, "recency_days": recency, "frequency_90": ad90 / np.minimum(tenure, 90),
            "active_days_7": weeks[:, 0], "active_days_28": ad28, "active_days_prev_28": adprev,
            "active_days_90": ad90, "calls_7": calls7, "calls_28": calls28, "credits_28": credits28,
            "credits_90": np.round(credits28 * rng.lognormal(1.0, 0.3, n_users), 1),
            "activity_slope_8w": slope, "wow_ratio": (weeks[:, 0] + 1) / (weeks[:, 1] + 1),
            "features_used_28": used28, "features_used_90": used90,
            "errors_28": errors28.astype(float), "error_rate_28": error_rate,
            **{f"weekly_active_w{i}": weeks[:, i] for i in range(8)},
            "ws_active_users_28": ws_active, "ws_users_ever": ws_active + rng.binomial(6, 0.5, n_users),
            "ws_credits_trend": ws_trend,
            "credits_per_active_day_28": np.divide(credits28, ad28, out=np.zeros(n_users), where=ad28 > 0),
            "share_of_ws_credits_28": rng.beta(1.0, 4.0, n_users),
            "engagement_drop_28": (adprev - ad28).astype(float),
            **_rhythm_columns(rng, ad90 + rng.binomial(275, prev_rate), recency, n_users),
        })
        z = (
            -1.0 - 0.12 * (ad28 - 10) + 0.05 * (adprev - ad28) + 0.5 * np.log1p(recency)
            + 6.0 * error_rate - 0.25 * (used28 - 2) - 0.8 * np.log(ws_trend)
        )
        p = _sigmoid(z)
        churned = rng.random(n_users) < p
        lapse_later = ~churned & (rng.random(n_users) < _sigmoid(z - 0.5))
        day = np.clip(np.round(2 + 28 * rng.beta(1 + 4 * rate, 2.0)), 2, WINDOW)
        frame["churned"] = churned.astype(int)
        frame["days_to_inactivity"] = np.where(churned, 1.0, np.where(lapse_later, day, np.inf))
        frames.append(frame)
        truth.append(p)
    frame = pd.concat(frames, ignore_index=True)
    frame.loc[frame["as_of"] == dates[-1], "days_to_inactivity"] = np.nan  # outcome not known yet
    return TrainingSet.from_frame(frame, days_to_inactivity="days_to_inactivity"), np.concatenate(truth)


def split_last(ts: TrainingSet) -> tuple[TrainingSet, TrainingSet]:
    last = ts.as_of == ts.dates[-1]
    return ts.subset(~last.to_numpy()), ts.subset(last.to_numpy())


@pytest.fixture(scope="module")
def data() -> tuple[TrainingSet, TrainingSet, np.ndarray]:
    ts, truth = make_snapshots()
    train, test = split_last(ts)
    return train, test, truth[(ts.as_of == ts.dates[-1]).to_numpy()]


@pytest.fixture(scope="module")
def bundle(data) -> ChurnModel:
    train, _, _ = data
    return ChurnModel.fit(train, n_folds=2)


@pytest.fixture(scope="module")
def scored(bundle: ChurnModel, data) -> pd.DataFrame:
    return bundle.predict(data[1].X)


@pytest.fixture(scope="module")
def worded(bundle: ChurnModel, scored: pd.DataFrame, data) -> pd.DataFrame:
    """The scores frame as the pipeline publishes it: drivers put in words."""
    return with_words(scored, data[1].X[bundle.feature_columns])


def test_synthetic_columns_are_user_behaviour(data):
    # TrainingSet.from_frame's default: every numeric column but keys, as_of, label, days_to_inactivity
    assert list(data[0].X.columns) == USER_BEHAVIOUR.columns


@pytest.mark.parametrize("kind", CLASSIFIER_KINDS)
def test_each_kind_gives_probabilities(kind, data):
    train, test, _ = data
    clf = make_classifier(kind).fit(train.X, train.y)
    proba = clf.predict_proba(test.X)
    assert proba.shape == (len(test.X), 2)
    assert np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert evaluate(test.y, proba[:, 1])["auc"] > 0.7


def test_unknown_kind_and_missing_columns_are_explained(data):
    with pytest.raises(ValueError, match="unknown classifier kind"):
        make_classifier("svm")
    train, test, _ = data
    clf = make_classifier("logistic").fit(train.X, train.y)
    with pytest.raises(ValueError, match="lacks feature columns.*recency_days"):
        clf.predict_proba(test.X.drop(columns="recency_days"))


def test_inf_is_treated_as_missing(data):
    train, test, _ = data
    clf = make_classifier("logistic").fit(train.X, train.y)
    X = test.X.head(5).copy()
    X["wow_ratio"] = np.inf
    assert np.isfinite(clf.predict_proba(X)).all()


def test_expected_calibration_error_known_values():
    assert expected_calibration_error([0, 0, 0, 0], [0.9, 0.9, 0.9, 0.9]) == pytest.approx(0.9)
    assert expected_calibration_error([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == pytest.approx(0.0)
    rng = np.random.default_rng(1)
    p = rng.random(200_000)
    assert expected_calibration_error(rng.random(200_000) < p, p) < 0.01


def test_calibrated_model_is_calibrated_out_of_time(data):
    train, test, truth = data
    for kind in ("xgboost", "logistic"):
        model = fit_calibrated(kind, train)
        assert model.info["calibration_dates"] == [train.dates[-1].date().isoformat()] * 2
        assert model.info["fit_dates"][1] < model.info["calibration_dates"][0]
        p = model.predict_proba(test.X)[:, 1]
        assert expected_calibration_error(test.y, p) <= 0.05, kind
        assert np.corrcoef(p, truth)[0, 1] > 0.85


def test_calibration_needs_a_later_slice(data):
    one_date = data[1]
    with pytest.raises(ValueError, match="more than 1 as-of date"):
        fit_calibrated("xgboost", one_date)


def test_select_model_picks_best_out_of_time_auc(bundle: ChurnModel, data):
    train, test, _ = data
    cv = pd.DataFrame(bundle.metadata["cv"])
    dates = [d.date().isoformat() for d in train.dates]
    assert sorted(cv["fold_date"].unique()) == dates[-2:]
    for _, row in cv.iterrows():  # expanding window: train on every snapshot before the fold
        assert row["n_train"] == sum(train.as_of.dt.date.astype(str) < row["fold_date"])
    means = cv.groupby("kind")["auc"].mean()
    assert bundle.kind == means.idxmax()
    assert bundle.metadata["mean_auc"][bundle.kind] == pytest.approx(means.max())
    assert evaluate(test.y, bundle.predict_proba(test.X))["auc"] > 0.75


def test_select_model_needs_enough_dates(data):
    with pytest.raises(ValueError, match="need 6 as-of dates"):
        select_model(data[0], kinds=("logistic",), n_folds=5)
    with pytest.raises(ValueError, match="at least 2"):
        select_model(data[0], n_folds=1)


def test_evaluate_reports_all_metrics():
    y = np.array([1] * 10 + [0] * 90)
    p = np.r_[np.linspace(0.9, 0.8, 10), np.linspace(0.5, 0.0, 90)]
    m = evaluate(y, p)
    assert m["auc"] == 1.0 and m["pr_auc"] == pytest.approx(1.0)
    assert m["top_decile_lift"] == pytest.approx(10.0)
    assert m["base_rate"] == 0.1 and m["n"] == 100
    assert 0 <= m["brier"] <= 1 and 0 <= m["ece"] <= 1
    assert np.isnan(evaluate([0, 0], [0.1, 0.2])["auc"])


def test_predict_output_contract(bundle: ChurnModel, scored: pd.DataFrame, worded: pd.DataFrame, data):
    test = data[1]
    assert list(scored.columns) == ["churn_probability", "risk_score", "drivers", "days_until_churn", "state"]
    assert set(scored["state"]) <= {"active", "lapsing", "dormant"}
    assert scored.index.equals(test.X.index)
    assert scored["churn_probability"].between(0, 1).all()
    np.testing.assert_allclose(scored["risk_score"], np.round(100 * scored["churn_probability"], 1))
    assert scored["days_until_churn"].dtype == "Int64"
    assert list(bundle.predict(test.X.iloc[:0]).columns) == list(scored.columns)
    assert list(worded.columns) == SCORE_COLUMNS and worded.index.equals(test.X.index)
    for col in ("churn_probability", "risk_score", "days_until_churn", "state"):
        pd.testing.assert_series_equal(worded[col], scored[col])
    last = [factors[-1] for factors in worded["risk_factors"]]  # the state entry closes every list
    assert [f["state"] for f in last] == scored["state"].tolist() and {f["driver"] for f in last} == {"state"}


def test_drivers_name_real_columns_with_values(scored: pd.DataFrame, worded: pd.DataFrame, data):
    X = data[1].X
    risky = scored["churn_probability"] > 0.5
    assert risky.sum() > 50
    for idx, drivers in scored.loc[risky, "drivers"].items():
        assert 1 <= len(drivers) <= 3
        assert [d["contribution"] for d in drivers] == sorted((d["contribution"] for d in drivers), reverse=True)
        for d in drivers:
            assert set(d) == {"feature", "driver", "contribution", "value"}
            assert d["feature"] in X.columns and d["contribution"] > 0
            assert d["value"] == pytest.approx(float(X.at[idx, d["feature"]]))
        factors = worded.at[idx, "risk_factors"][:-1]  # the last entry is the user's state
        assert [{k: f[k] for k in d} for f, d in zip(factors, drivers)] == drivers
        for f in factors:
            assert f["direction"] == "raises risk"
            assert format_value(f["feature"], f["value"]) in f["text"]


def test_explain_drivers_groups_related_columns():
    X = pd.DataFrame(
        {"active_days_28": [4.0], "active_days_prev_28": [18.0], "recency_days": [12.0], "tenure_days": [400.0]}
    )
    contribs = np.array([[0.3, 0.2, 0.4, -0.1]])
    (drivers,) = explain_drivers(contribs, X, top_k=3)
    assert [d["driver"] for d in drivers] == ["activity_drop", "recency"]  # tenure lowers risk: left out
    assert explain_drivers(np.array([[0.01, 0.01, 0.02, -0.1]]), X) == [[]]  # too weak to report
    assert drivers[0] == {"feature": "active_days_28", "driver": "activity_drop", "contribution": 0.5, "value": 4.0}
    assert drivers[1] == {"feature": "recency_days", "driver": "recency", "contribution": 0.4, "value": 12.0}


def test_actions_come_from_the_mapping(worded: pd.DataFrame):
    columns = ["churn_probability", "risk_factors", "recommended_actions"]
    for p, factors, actions in worded[columns].itertuples(index=False):
        expected = {DRIVER_ACTIONS[f["driver"]] for f in factors if f["driver"] != "state"}
        assert {a["action_id"] for a in actions} <= set(ACTIONS)
        if expected:
            assert {a["action_id"] for a in actions} == expected
        for a in actions:
            assert a["title"] == ACTIONS[a["action_id"]]["title"]
            assert a["priority"] == ("high" if p >= 0.7 else "medium" if p >= 0.4 else "low")


def test_days_until_churn_varies_and_fits_the_window(scored: pd.DataFrame):
    days = scored["days_until_churn"]
    assert days.dropna().nunique() >= 3
    high = scored["churn_probability"] >= 0.7
    assert high.sum() > 20
    assert days[high].notna().all() and days[high].between(1, WINDOW).all()
    assert days.isna().any()  # some users are not expected to lapse within the window


def test_time_to_churn_model_orders_by_risk(data):
    train, test, _ = data
    known = train.days_to_inactivity.notna().to_numpy()
    d = train.days_to_inactivity.to_numpy()[known]
    model = TimeToChurnModel().fit(train.X[known], d, d <= WINDOW)
    cdf = model.predict_cdf(test.X)
    assert np.all(np.diff(cdf, axis=1) >= 0) and np.all((cdf >= 0) & (cdf <= 1))
    days = model.predict_days(test.X)
    assert set(np.unique(days)) <= {-1, *range(1, WINDOW + 1)}
    assert np.all((days == -1) == (cdf[:, -1] < 0.5))


def test_inactivity_targets_from_active_days():
    day = lambda d: pd.Timestamp("2025-01-01") + pd.Timedelta(days=d)  # noqa: E731
    active = pd.DataFrame({
        "workspace_id": "w",
        "user_id": ["quiet", "lapses", "lapses", "stays", "stays", "stays", "late"],
        "day": [day(-3), day(-1), day(9), day(5), day(25), day(45), day(20)],
    })
    snaps = pd.DataFrame({"workspace_id": "w", "user_id": ["quiet", "lapses", "stays", "late"], "as_of": day(0)})
    out = inactivity_targets(active, snaps, observed_until=day(45), window=30)
    assert out.tolist()[:3] == [1.0, 10.0, np.inf]
    assert np.isnan(out.iloc[3])  # last active day 20: a lapse can be confirmed only on day 50
    assert np.isnan(inactivity_targets(active, snaps, observed_until=day(20)).iloc[0])


def test_save_load_round_trip(bundle: ChurnModel, data, tmp_path):
    test = data[1]
    bundle.save(tmp_path / "model")
    assert not list((tmp_path / "model").glob("*.pkl"))
    loaded = ChurnModel.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.predict(test.X), bundle.predict(test.X))
    assert loaded.kind == bundle.kind and loaded.metadata["mean_auc"] == bundle.metadata["mean_auc"]


@pytest.mark.parametrize("kind", ["random_forest", "logistic", "mlp"])
def test_save_load_round_trip_sklearn_kinds(kind, tmp_path):
    train, test = split_last(make_snapshots(n_users=500, n_dates=4, seed=3)[0])
    model = ChurnModel.fit(train, kinds=(kind,), n_folds=2, min_per_class=50, explainer_params={"n_estimators": 50})
    assert model.kind == kind and model.explainer is not model.classifier.estimator
    model.save(tmp_path / kind)
    assert {p.suffix for p in (tmp_path / kind).iterdir()} == {".json", ".skops"}
    loaded = ChurnModel.load(tmp_path / kind)
    np.testing.assert_array_equal(loaded.predict_proba(test.X), model.predict_proba(test.X))
    assert loaded.explain(test.X) == model.explain(test.X)


def test_insufficient_data_is_reported(data):
    ok, counts = check_sufficient([1] * 20 + [0] * 500, min_per_class=100)
    assert not ok and counts == {"churned": 20, "retained": 500}
    assert check_sufficient([1] * 100 + [0] * 100)[0]
    train = data[0]
    few = train.subset(((train.y == 0) | (np.arange(len(train.y)) % 50 == 0)).to_numpy())
    with pytest.raises(InsufficientDataError) as err:
        ChurnModel.fit(few, min_per_class=200)
    assert err.value.counts["churned"] < 200 and "insufficient data" in str(err.value)


def test_same_seed_same_probabilities():
    train, test = split_last(make_snapshots(n_users=800, n_dates=3, seed=5)[0])
    for kind in ("xgboost", "random_forest", "mlp"):
        a = fit_calibrated(kind, train, random_state=7).predict_proba(test.X)
        b = fit_calibrated(kind, train, random_state=7).predict_proba(test.X)
        np.testing.assert_array_equal(a, b)


def test_training_set_checks_alignment(data):
    train = data[0]
    with pytest.raises(ValueError, match="len"):
        TrainingSet(train.X, train.y.iloc[:-1], train.as_of, train.keys)
    with pytest.raises(ValueError, match="0 \\(retained\\) or 1"):
        TrainingSet(train.X, train.y * 2, train.as_of, train.keys)


def test_calibration_plot_shows_binned_rates(data, bundle: ChurnModel):
    test = data[1]
    y, p = test.y.to_numpy(), bundle.predict_proba(test.X)
    fig = calibration_plot(y, p)
    ax, hist = fig.axes
    perfect, model = ax.get_lines()
    assert list(perfect.get_xdata()) == [0, 1] and list(perfect.get_ydata()) == [0, 1]
    bins = pd.Series(np.minimum(np.floor(p * 10), 9)).astype(int)
    binned = pd.DataFrame({"p": p, "y": y}).groupby(bins.to_numpy()).mean()  # non-empty bins, in order
    assert len(binned) >= 3
    np.testing.assert_allclose(model.get_xdata(), binned["p"])
    np.testing.assert_allclose(model.get_ydata(), binned["y"])
    assert model.get_label() == f"model (ECE {expected_calibration_error(y, p):.3f})"
    heights = [patch.get_height() for patch in hist.patches]
    assert len(heights) == 10 and sum(heights) == len(p)


def test_roc_plot_matches_roc_auc(data, bundle: ChurnModel):
    test = data[1]
    y, p = test.y.to_numpy(), bundle.predict_proba(test.X)
    chance, curve = roc_plot(y, p).axes[0].get_lines()
    assert list(chance.get_xdata()) == [0, 1] and list(chance.get_ydata()) == [0, 1]
    fpr, tpr = np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata())
    assert (fpr[0], tpr[0]) == (0.0, 0.0) and (fpr[-1], tpr[-1]) == (1.0, 1.0)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    auc = roc_auc_score(y, p)
    assert np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2) == pytest.approx(auc)  # trapezoid area
    assert curve.get_label() == f"AUC {auc:.3f}"


def test_risk_score():
    assert risk_score([0.0, 0.1234, 1.0]).tolist() == [0.0, 12.3, 100.0]
    assert risk_score([-0.2, 1.5]).tolist() == [0.0, 100.0]
