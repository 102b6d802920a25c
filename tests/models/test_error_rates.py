"""models.error_rates on small seeded panels: shrinkage, breaches, point-in-time features, the escalation model,
forecast intervals, alerts and the baseline rules."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.error_rates import (
    AlertPolicy,
    EngineConfig,
    EscalationModel,
    ThresholdPolicy,
    baselines,
    build_panel,
    daily_features,
    find_breaches,
    frame_at,
    future_breach,
    prepare,
    score,
    snapshot_rows,
    thresholds,
    train,
)
from models.error_rates.forecast import AgentState, PathParams, expected_calls, forecast
from models.error_rates.rules import burn_rate, static, three_sigma

END = pd.Timestamp("2026-06-30")


def synthetic(n_agents: int = 24, days: int = 320, seed: int = 0, incidents_per_agent: int = 3) -> pd.DataFrame:
    """Agents with a base rate and convex incident ramps (3-8 days to a 20-50% peak), 40-120 calls a day."""
    rng = np.random.default_rng(seed)
    rows = []
    day0 = END - pd.Timedelta(days=days - 1)
    for a in range(n_agents):
        base = np.exp(rng.uniform(np.log(0.005), np.log(0.04)))
        rate = np.full(days, base)
        for _ in range(incidents_per_agent):
            s, ramp, peak = int(rng.integers(20, days - 12)), int(rng.integers(3, 9)), rng.uniform(0.2, 0.5)
            x = np.arange(days) - s
            shape = np.where((x >= 0) & (x <= ramp), ((x + 1) / (ramp + 1)) ** 2, 0)
            shape = np.where((x > ramp) & (x <= ramp + 2), 1 - (x - ramp) / 3, shape)
            rate = np.maximum(rate, base + (peak - base) * shape)
        calls = rng.poisson(rng.uniform(40, 120), days)
        errors = rng.binomial(calls, rate)
        rows.append(pd.DataFrame({"workspace_id": f"ws-{a % 6}", "agent_id": f"ag-{a:02d}",
                                  "feature": ["api", "chat", "search"][a % 3], "day": day0 + pd.to_timedelta(np.arange(days), "D"),
                                  "calls": calls, "errors": errors}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return synthetic()


def _panel(frame, days=200, end=END):
    return build_panel(frame, end - pd.Timedelta(days=days - 1), end)


def test_panel_is_dense_zero_filled_and_keeps_the_main_feature():
    frame = pd.DataFrame({"workspace_id": ["w", "w", "w", "v"], "agent_id": ["a", "a", "a", "b"],
                          "feature": ["api", "chat", "api", "x"],
                          "day": pd.to_datetime(["2026-06-28", "2026-06-28", "2026-06-30", "2026-06-29"]),
                          "calls": [5, 1, 3, 2], "errors": [1, 0, 0, 2]})
    p = build_panel(frame, "2026-06-27", "2026-06-30")
    assert p.calls.shape == (2, 4) and list(p.agent_id) == ["b", "a"]  # sorted by (workspace, agent)
    assert p.calls[1].tolist() == [0, 6, 0, 3] and p.errors[1].tolist() == [0, 1, 0, 0]
    assert list(p.feature) == ["x", "api"] and p.first_day.tolist() == [2, 1]
    with pytest.raises(ValueError):
        build_panel(frame, "2026-06-30", "2026-06-27")


def test_baseline_shrinks_new_quiet_and_failing_agents_toward_their_peers(data):
    extra = pd.DataFrame({"workspace_id": ["ws-0"] * 3, "agent_id": ["new", "broken", "perfect"], "feature": "api",
                          "day": [END - pd.Timedelta(days=8), END - pd.Timedelta(days=30), END - pd.Timedelta(days=30)],
                          "calls": [3, 200, 300], "errors": [0, 200, 0]})
    p = _panel(pd.concat([data, extra]))
    b = baselines(p)
    i = {a: k for k, a in enumerate(p.agent_id)}
    last = p.n_days - 1
    assert abs(b.rate[i["new"], last] - b.prior[i["new"], last]) < 0.3 * b.prior[i["new"], last]  # borrowed
    assert 0.3 < b.rate[i["broken"], last] < 1.0  # high, never exactly 100%
    assert 0 < b.rate[i["perfect"], last] < b.prior[i["perfect"], last]  # low, never 0%
    assert (b.rate > 0).all() and (b.rate < 1).all()


def test_baseline_ignores_the_last_week_caps_incidents_and_does_not_depend_on_the_panel_start(data):
    one = data[data["agent_id"] == "ag-01"].copy()
    quiet = one.assign(errors=np.random.default_rng(1).binomial(one["calls"], 0.01))
    spiked = quiet.copy()
    hit = spiked["day"].between(END - pd.Timedelta(days=40), END - pd.Timedelta(days=33))
    spiked.loc[hit, "errors"] = (spiked.loc[hit, "calls"] * 0.5).astype(int)  # an 8-day incident in the window
    recent = quiet.copy()
    recent.loc[recent["day"] > END - pd.Timedelta(days=7), "errors"] = recent["calls"]
    b_quiet, b_spiked, b_recent = (baselines(_panel(f)).rate[0, -1] for f in (quiet, spiked, recent))
    raw = spiked[spiked["day"].between(END - pd.Timedelta(days=62), END - pd.Timedelta(days=7))]
    assert b_recent == pytest.approx(b_quiet)  # the last 7 days are not in the baseline
    assert b_spiked < 1.8 * b_quiet < raw["errors"].sum() / raw["calls"].sum()  # winsorised, unlike the raw rate
    assert baselines(_panel(data, 200)).rate[:, -1] == pytest.approx(baselines(_panel(data, 120)).rate[:, -1])


def test_breach_needs_two_days_above_the_threshold_and_enough_evidence():
    def panel(calls, errors):
        days = len(calls)
        return build_panel(pd.DataFrame({"workspace_id": "w", "agent_id": "a", "day": pd.date_range(end=END, periods=days),
                                         "calls": calls, "errors": errors}), END - pd.Timedelta(days=days - 1), END)

    pol = ThresholdPolicy()
    flat = np.full((1, 6), 0.01)
    thr = thresholds(flat, pol)
    assert thr[0, 0] == pytest.approx(0.06)  # max(3 x 1%, 1% + 5 points)
    one_day = panel([100, 100, 100, 100, 100, 100], [1, 1, 20, 1, 1, 1])  # an outage: one day
    assert not find_breaches(one_day, thr, pol, flat).breach.any()
    two = panel([100, 100, 100, 0, 100, 100], [1, 1, 20, 0, 30, 1])  # a day without calls in between
    br = find_breaches(two, thr, pol, flat)
    assert br.breach[0].tolist() == [False] * 4 + [True, False] and br.start[0, 4]
    tiny = panel([2, 2, 2, 2, 2, 2], [0, 1, 1, 0, 0, 0])  # 2 failures out of 4 calls: not enough evidence
    assert not find_breaches(tiny, thr, pol, flat).breach.any()
    label, days = future_breach(br.breach, horizon=2)
    assert label[0].tolist()[:4] == [0, 0, 1, 1] and np.isnan(label[0, 4:]).all()
    assert days[0, 2] == 2 and days[0, 3] == 1
    override = thresholds(flat, pol, override_rate=np.array([0.5]))
    assert (override == 0.5).all()


def test_features_are_point_in_time(data):
    p = _panel(data)
    cut = p.n_days - 10
    changed = data.copy()
    future = changed["day"] > p.start + pd.Timedelta(days=cut)
    changed.loc[future, "errors"] = changed.loc[future, "calls"]  # everything after the cut fails
    f1 = daily_features(p, baselines(p))
    p2 = _panel(changed)
    f2 = daily_features(p2, baselines(p2))
    for name in f1:
        np.testing.assert_allclose(f1[name][:, : cut + 1], f2[name][:, : cut + 1], err_msg=name)
    assert not np.allclose(f1["z_1"][:, -1], f2["z_1"][:, -1])


def test_escalation_model_trains_and_round_trips_as_json(data):
    cfg = EngineConfig(training_days=150, validation_days=28, n_paths=100)
    p = _panel(data, cfg.panel_days())
    prep = prepare(p, cfg)
    trained = train(prep, p.n_days - 1, cfg)
    assert trained.n_positive > 10 and set(trained.candidates["model"]) == {"xgboost", "logistic"}
    assert trained.metrics["oot_auc"] > 0.6 and trained.metrics["oot_is_out_of_time"] == 1.0
    rows = snapshot_rows(prep, np.arange(p.n_days - 40, p.n_days - 14), cfg)
    again = EscalationModel.from_json(trained.model.to_json())
    np.testing.assert_allclose(again.predict(rows), trained.model.predict(rows), rtol=1e-6)
    np.testing.assert_allclose(again.expected_days(rows), trained.model.expected_days(rows), rtol=1e-5)
    assert (trained.model.expected_days(rows) >= 1).all() and (trained.model.expected_days(rows) <= cfg.horizon).all()
    assert trained.model.contributions(rows).shape == (len(rows), len(trained.model.features))

    alerts, fc = score(prep, p.n_days - 1, trained.model, trained.path_params, cfg)
    assert len(alerts) == p.n_agents and len(fc) == p.n_agents * cfg.horizon
    assert not fc.duplicated(["workspace_id", "agent_id", "prediction_date"]).any()
    assert (fc["lower_95"] <= fc["lower_80"]).all() and (fc["lower_80"] <= fc["predicted_rate"]).all()
    assert (fc["predicted_rate"] <= fc["upper_80"]).all() and (fc["upper_80"] <= fc["upper_95"]).all()
    assert fc["p_breach_by"].between(0, 1).all() and alerts["reason"].str.len().gt(10).all()
    rank = alerts["risk_rank"].to_numpy()
    assert (rank[:-1] >= rank[1:]).all()  # riskiest first


def test_forecast_is_deterministic_and_per_agent():
    def state(n):
        return AgentState(baseline=np.full(n, 0.02), level=np.linspace(0.02, 0.3, n), threshold=np.full(n, 0.07),
                          p_breach=np.linspace(0.0, 0.9, n), expected_days=np.full(n, 3.0), delay_sd=0.4,
                          in_breach=np.arange(n) == n - 1, expected_calls=np.full((n, 5), 50.0))

    params = PathParams()
    a = forecast(state(4), params, 5, n_paths=200, seed=0)
    b = forecast(state(4), params, 5, n_paths=200, seed=0)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    alone = forecast(AgentState(**{k: (v[:1] if isinstance(v, np.ndarray) else v) for k, v in state(4).__dict__.items()}),
                     params, 5, n_paths=200, seed=0)
    np.testing.assert_array_equal(alone["mean"], a["mean"][:1])  # an agent's forecast ignores the other agents
    assert (a["q025"] <= a["q10"]).all() and (a["q10"] <= a["q90"]).all() and (a["q90"] <= a["q975"]).all()
    assert (a["p_breach_by"][:, 1:] >= a["p_breach_by"][:, :-1]).all() and (a["p_breach_by"][-1] == 1).all()
    assert a["mean"][2, 0] > a["mean"][0, 0]  # a rising, likely escalating agent is forecast higher
    calls = np.tile(np.array([10.0, 20, 30, 40, 50, 0, 0]), (1, 4))
    assert expected_calls(calls, calls.shape[1] - 1, 7)[0].tolist() == [10, 20, 30, 40, 50, 0, 0]


def test_alert_statuses_and_levels(data):
    cfg = EngineConfig(training_days=150, n_paths=50, alerts=AlertPolicy(min_calls_7d=20, inactive_days=14))
    gone = data[data["agent_id"] == "ag-00"].assign(agent_id="gone")
    gone = gone[gone["day"] < END - pd.Timedelta(days=30)]
    thin = pd.DataFrame({"workspace_id": "ws-1", "agent_id": "thin", "feature": "api",
                         "day": pd.date_range(end=END, periods=5), "calls": 2, "errors": 0})
    broken = data[data["agent_id"] == "ag-02"].assign(agent_id="broken")
    broken["errors"] = broken["calls"]
    p = _panel(pd.concat([data, gone, thin, broken]), cfg.panel_days())
    prep = prepare(p, cfg)
    trained = train(prep, p.n_days - 1, cfg)
    alerts, fc = score(prep, p.n_days - 1, trained.model, trained.path_params, cfg)
    by = alerts.set_index("agent_id")
    assert by.loc["gone", "status"] == "inactive" and by.loc["gone", "alert_level"] is None
    assert "No calls for" in by.loc["gone", "reason"] and "gone" not in set(fc["agent_id"])
    assert by.loc["thin", "status"] == "insufficient_volume" and np.isnan(by.loc["thin", "probability"])
    assert "Too little traffic" in by.loc["thin", "reason"]
    assert by.loc["broken", "status"] == "chronic" and by.loc["broken", "alert_level"] == "critical"
    assert set(alerts["status"]) <= {"ok", "escalating", "breach", "chronic", "insufficient_volume", "inactive"}
    judged = alerts[alerts["status"] == "escalating"]
    assert judged["probability"].ge(cfg.alerts.watch).all()
    pol = AlertPolicy()
    assert pol.level(np.array([0.1, 0.2, 0.4, 0.7])).tolist() == [None, "watch", "warning", "critical"]
    with pytest.raises(ValueError):
        AlertPolicy(watch=0.5, warning=0.4)


def test_baseline_rules():
    days = 40
    calls = np.full(days, 100)
    errors = np.full(days, 1)
    errors[-1] = 30
    p = build_panel(pd.DataFrame({"workspace_id": "w", "agent_id": "a", "day": pd.date_range(end=END, periods=days),
                                  "calls": calls, "errors": errors}), END - pd.Timedelta(days=days - 1), END)
    for rule in (static, three_sigma, burn_rate):
        fired = rule(p)
        assert fired[0, -1] and not fired[0, -5], rule.__name__
        assert not rule(p, min_calls_7d=10_000)[0].any()  # the same volume guard as the model
