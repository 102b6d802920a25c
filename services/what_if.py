"""What-if scenarios on the stored predictions (``POST /api/analytics/predictions/what-if``).

A what-if never retrains: it adjusts what the nightly run stored for the workspace (the consumption forecast
per feature/service with its 95% interval, the growth scenarios of DAU/WAU/MAU with theirs, the growth
milestones) with rates derived from stored tables (``services/what_if_data.py``), so the same request on the
same as-of date gives the same answer, and no adjustment gives the baseline itself.

Adjustments (ranges in :data:`RANGES`), applied in this order whatever the order given, so a price applies to
the credits of added users and agents as well; each one's contribution is measured after those before it:

1. ``user_growth`` ``{percent_per_week, start_date?}``: that many percent more (or fewer) new users than the
   workspace's usual (its new users of the last 28 days), from the start date. Added users stay in MAU for the
   28-day window, then age out at the workspace's observed monthly rate (1 - lost / MAU over the last 28 days);
   DAU and WAU grow by the as-of DAU/MAU and WAU/MAU ratios, credits by the workspace's credits per MAU user.
2. ``churn_retention`` ``{share}``: keep that share of the users now at high churn risk (probability >= 0.7).
   Each such user is an expected ``p`` of a churner, leaving after ``days_until_churn`` (30 when unknown); kept,
   they go on spending their last 28 days' credits (the online store's ``credits_28``) from then on, and stay
   in DAU/WAU/MAU from the day they would have left them (churn + 1/7/28 days), at the workspace's ratios.
3. ``agents`` ``{kind, count, start_date?}``: add (or remove, count < 0) agents of a kind, a kind being the
   feature/service an agent spends most on; each adds the median daily credits of that kind's agents over the
   last 28 days, spread over features/services as that kind's agents spread theirs. Agents are not users.
4. ``usage_change`` ``{percent, start_date?}``: a one-off change in all credits from the start date (a launch, a
   migration). Users are unchanged.
5. ``price`` ``{dimension, multiplier}``: the credit price of one feature/service times the multiplier. No price
   elasticity is stored, so usage is assumed unchanged; users are unchanged.

Intervals: a series' adjusted bounds are its stored bounds times adjusted / baseline (the relative uncertainty
of the stored forecast is kept; a day whose baseline is 0 gets the adjusted value as both bounds). Sums over 30 /
90 days / the horizon take their interval from the stored cumulative forecast (calibrated for a total), scaled
the same way. ``base_scenario`` ``worst``/``best`` are the stored P10/P90 for growth; for credits, whose runs
store the 95% interval only, they are the likely value moved by z(0.90) / z(0.975) of the way to its bounds.
"""
from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy.engine import Connection

from core.ids import entity_uuid
from services.what_if_data import (
    HIGH_RISK,
    RECENT_DAYS,
    Series,
    Stored,
    StoredReads,
    read_agent_kinds,
    read_stored,
)

CREDIT_METRICS = ("credits",)
GROWTH_METRICS = ("dau", "wau", "mau")
METRICS = CREDIT_METRICS + GROWTH_METRICS
SCENARIOS = ("worst", "likely", "best")
MAX_HORIZON_DAYS = 365
ORDER = ("user_growth", "churn_retention", "agents", "usage_change", "price")
# (type, field) -> (low, high): the ranges an adjustment's numbers must lie in (inclusive).
RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("user_growth", "percent_per_week"): (-100.0, 500.0),
    ("churn_retention", "share"): (0.0, 1.0),
    ("agents", "count"): (-1000, 1000),
    ("usage_change", "percent"): (-100.0, 1000.0),
    ("price", "multiplier"): (0.0, 10.0),
}
Z80_OVER_Z95 = 1.2815515655446004 / 1.959963984540054
MONTH = 28


class WhatIfInputError(ValueError):
    """An adjustment the stored data cannot honour (unknown feature/service or agent kind); ``loc`` names it."""

    def __init__(self, loc: list[Any], message: str):
        super().__init__(message)
        self.loc = loc


def check_range(kind: str, name: str, value: float) -> float:
    """``value`` if within the range of ``kind.name``, else a ``ValueError`` naming the field and its range."""
    lo, hi = RANGES[(kind, name)]
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be between {lo:g} and {hi:g} for a {kind} adjustment, got {value:g}")
    return value


FIELDS = {"user_growth": ("percent_per_week",), "churn_retention": ("share",), "agents": ("kind", "count"),
          "usage_change": ("percent",), "price": ("dimension", "multiplier")}
OPTIONAL = {"user_growth": ("start_date",), "agents": ("start_date",), "usage_change": ("start_date",)}


def validate_request(request: dict[str, Any]) -> dict[str, Any]:
    """The request with defaults filled and dates parsed; ``WhatIfInputError`` (a ``ValueError``) naming the first
    field out of range (the API's request model checks the same ranges, for callers of the service itself)."""
    def bad(loc: list, msg: str) -> WhatIfInputError:
        return WhatIfInputError(["body", *loc], msg)

    out = {"workspace_id": request.get("workspace_id"), "base_scenario": request.get("base_scenario") or "likely",
           "metrics": list(request.get("metrics") or ["credits"]), "horizon_days": request.get("horizon_days", 90)}
    if not isinstance(out["workspace_id"], str) or not out["workspace_id"]:
        raise bad(["workspace_id"], "workspace_id is required")
    if out["base_scenario"] not in SCENARIOS:
        raise bad(["base_scenario"], f"base_scenario must be one of {', '.join(SCENARIOS)}")
    for i, m in enumerate(out["metrics"]):
        if m not in METRICS:
            raise bad(["metrics", i], f"metrics must be among {', '.join(METRICS)}, got {m!r}")
    h = out["horizon_days"]
    if not isinstance(h, int) or isinstance(h, bool) or not 1 <= h <= MAX_HORIZON_DAYS:
        raise bad(["horizon_days"], f"horizon_days must be between 1 and {MAX_HORIZON_DAYS}, got {h!r}")
    adjustments = []
    for i, a in enumerate(request.get("adjustments") or []):
        t = a.get("type") if isinstance(a, dict) else None
        if t not in FIELDS:
            raise bad(["adjustments", i, "type"], f"type must be one of {', '.join(ORDER)}, got {t!r}")
        clean: dict[str, Any] = {"type": t}
        for name in FIELDS[t]:
            v = a.get(name)
            if name in ("kind", "dimension"):
                if not isinstance(v, str) or not v:
                    raise bad(["adjustments", i, name], f"{name} (a feature/service name) is required for {t}")
            else:
                if not isinstance(v, (int, float)) or isinstance(v, bool) or (name == "count" and not isinstance(v, int)):
                    raise bad(["adjustments", i, name], f"{name} must be a number for {t}")
                try:
                    check_range(t, name, v)
                except ValueError as exc:
                    raise bad(["adjustments", i, name], str(exc)) from None
            clean[name] = v
        start = a.get("start_date")
        if start is not None and "start_date" in OPTIONAL.get(t, ()):
            try:
                clean["start_date"] = start if isinstance(start, date) else date.fromisoformat(str(start))
            except ValueError:
                raise bad(["adjustments", i, "start_date"], "start_date must be a date (YYYY-MM-DD)") from None
        adjustments.append(clean)
    out["adjustments"] = adjustments
    return out


# --- effects on days 1..n after the as-of date ------------------------------------------------------------------

def _start_index(start: date | None, as_of: date) -> int:
    """0-based index of the first affected forecast day (day 1 is as_of + 1)."""
    return 0 if start is None else max(0, (start - as_of).days - 1)


def _ratio(values: list[float], first: int, last: int, default: float) -> float:
    return values[last] / values[first] if values and values[first] else default


class _Rates:
    """The workspace's recent per-user rates, from ``workspace_growth_metrics`` and ``workspace_daily_metrics``."""

    def __init__(self, stored: Stored):
        users = stored.users
        last = users[-1] if users else {}
        self.mau = float(last.get("mau") or 0)
        self.dau_ratio = (last.get("dau") or 0) / self.mau if self.mau else 0.0
        self.wau_ratio = (last.get("wau") or 0) / self.mau if self.mau else 0.0
        recent = users[-RECENT_DAYS:]
        self.new_per_day = sum(u["new_users"] for u in recent) / RECENT_DAYS if recent else 0.0
        month_ago = users[-RECENT_DAYS - 1]["mau"] if len(users) > RECENT_DAYS else None
        lost = sum(u["lost_users"] for u in recent)
        self.monthly_survival = min(1.0, max(0.0, 1 - lost / month_ago)) if month_ago else 0.8
        self.credits_per_user_day = stored.recent_credits / RECENT_DAYS / self.mau if self.mau else 0.0


def _growth_users(pct: float, start: int, n: int, rates: _Rates) -> list[float]:
    """Extra MAU users on each day from ``pct`` percent more new users per week from index ``start``."""
    x = pct / 100 * rates.new_per_day
    out, cum = [0.0] * n, 0.0
    for k in range(n - start):  # users who joined a days ago survive with surv(a)
        cum += 1.0 if k < MONTH else rates.monthly_survival ** ((k - MONTH + 1) / MONTH)
        out[start + k] = x * cum
    return out


def _retained(share: float, high_risk: list[dict], rates: _Rates, n: int) -> tuple[list[float], dict[str, list[float]]]:
    """Extra credits per day and extra DAU/WAU/MAU users per day from keeping ``share`` of the high-risk users."""
    credits, users = [0.0] * n, {m: [0.0] * n for m in GROWTH_METRICS}
    fallback = rates.credits_per_user_day * RECENT_DAYS
    lag = {"dau": 1, "wau": 7, "mau": MONTH}
    scale = {"dau": rates.dau_ratio, "wau": rates.wau_ratio, "mau": 1.0}
    for u in high_risk:
        kept = share * u["p"]
        d = max(1, int(u["days_until_churn"] or 30))
        daily = (u["credits_28"] if u["credits_28"] is not None else fallback) / RECENT_DAYS
        in_mau = u.get("state") in (None, "active", "lapsing")
        for i in range(n):
            t = i + 1
            credits[i] += kept * daily * min(1.0, t / d)
            if in_mau:
                for m in GROWTH_METRICS:
                    if t >= d + lag[m]:
                        users[m][i] += kept * scale[m]
    return credits, users


# --- the computation ---------------------------------------------------------------------------------------------

def _scenario_values(s: Series, scenario: str) -> tuple[list[float], list[float | None], list[float | None]]:
    """A credits series under the base scenario (worst/best: the approximate P10/P90 from the 95% bounds)."""
    if scenario == "likely":
        return list(s.value), list(s.lower), list(s.upper)
    bound = s.lower if scenario == "worst" else s.upper
    vals = [v if b is None else max(0.0, v + (b - v) * Z80_OVER_Z95) for v, b in zip(s.value, bound)]
    return vals, list(s.lower), list(s.upper)


def _points(dates: list[date], vals: list[float], lo: list, hi: list) -> list[dict[str, Any]]:
    return [{"date": d, "value": v, "lower": a, "upper": b} for d, v, a, b in zip(dates, vals, lo, hi)]


def _scaled(base: list[float], adj: list[float], bounds: list[float | None]) -> list[float | None]:
    return [None if b is None else b if a == v else (b * a / v if v else a) for v, a, b in zip(base, adj, bounds)]


def _total(label: str, vals: list[float], cumulative: Series | None, days: int) -> dict[str, Any]:
    """Sum over the first ``days`` days with the stored cumulative interval (scaled for adjusted sums)."""
    n = min(days, len(vals))
    value = sum(vals[:n])
    lo = hi = None
    if cumulative is not None and len(cumulative.value) >= n > 0:
        c_lo, c_hi, c_v = cumulative.lower[n - 1], cumulative.upper[n - 1], cumulative.value[n - 1]
        if c_lo is not None and c_hi is not None and c_v:  # the stored total's relative interval, kept
            lo, hi = c_lo * value / c_v, c_hi * value / c_v
    return {"label": label, "days": n, "value": value, "lower": lo, "upper": hi}


def _fmt(x: float) -> str:
    return f"{x:+,.0f}" if abs(x) >= 10 else f"{x:+,.1f}"


def _describe(adj: dict[str, Any]) -> str:
    t = adj["type"]
    start = f" from {adj['start_date']}" if adj.get("start_date") else ""
    if t == "user_growth":
        return f"new users {adj['percent_per_week']:+g}% per week{start}"
    if t == "churn_retention":
        return f"retain {adj['share']:.0%} of the users at high churn risk"
    if t == "agents":
        return f"{adj['count']:+d} {adj['kind']} agent(s){start}"
    if t == "usage_change":
        return f"usage {adj['percent']:+g}%{start}"
    return f"{adj['dimension']} price x{adj['multiplier']:g}"


def compute(conn: Connection, request: dict[str, Any], external_id: str, reads: StoredReads | None = None,
            version: str | None = None) -> dict[str, Any] | None:
    """The what-if answer (see the module doc), or ``None`` when nothing asked for has been predicted.

    Args:
        conn: A connection to the stored predictions (the API's read-only role is enough).
        external_id: The workspace's source id (the caller resolved it).
        request: ``workspace_id``, ``base_scenario`` (worst/likely/best), ``adjustments`` (dicts with ``type``,
            ranges already checked), ``metrics`` (subset of :data:`METRICS`), ``horizon_days``.
        reads, version: Keep the stored rows per workspace for this data version (``None``: read every time).

    Raises:
        WhatIfInputError: A price on a feature/service the forecast does not have, or an agent kind the
            workspace has no agents of.
    """
    ws = str(entity_uuid("workspace", request["workspace_id"]))
    metrics = list(dict.fromkeys(request.get("metrics") or ["credits"]))
    n_days, scenario = request.get("horizon_days", 90), request.get("base_scenario", "likely")
    adjustments = [dict(a, index=i) for i, a in enumerate(request.get("adjustments") or [])]
    ordered = sorted(adjustments, key=lambda a: (ORDER.index(a["type"]), a["index"]))
    want_credits = "credits" in metrics
    want_growth = any(m in GROWTH_METRICS for m in metrics)
    want_churn = any(a["type"] == "churn_retention" for a in adjustments)

    def kept(key: tuple, read):
        return read() if reads is None or version is None else reads.get(version, key, read)

    stored = kept(("stored", ws, n_days, want_credits, want_growth, want_churn),
                  lambda: read_stored(conn, ws, n_days, want_credits, want_growth, want_churn))
    as_of = stored.credits_as_of or stored.growth_as_of
    agents = {}
    if as_of is not None and any(a["type"] == "agents" for a in adjustments):
        agents = kept(("agents", external_id, as_of), lambda: read_agent_kinds(conn, external_id, as_of))
    has_credits = want_credits and "total" in stored.credits
    has_growth = want_growth and bool(stored.growth)
    if not has_credits and not has_growth:
        return None
    return _assemble({**request, "external_id": external_id}, stored, agents, metrics, ordered, adjustments, n_days,
                     scenario, has_credits, has_growth)


def _assemble(request, stored: Stored, agents, metrics, ordered, adjustments, n_days, scenario, has_credits,
              has_growth) -> dict[str, Any]:
    rates = _Rates(stored)
    c_as_of, g_as_of = stored.credits_as_of, stored.growth_as_of
    dims = sorted((d for d in stored.credits if d != "total"),
                  key=lambda d: (-sum(stored.credits[d].value), d)) if has_credits else []
    total = stored.credits.get("total") if has_credits else None
    nc = len(total.value) if total else 0
    if total:  # a feature/service missing a day of the total counts 0 credits that day
        for d in dims:
            s = stored.credits[d]
            if s.dates != total.dates:
                by_day = {day: (v, lo, hi) for day, v, lo, hi in zip(s.dates, s.value, s.lower, s.upper)}
                rows = [by_day.get(day, (0.0, 0.0, 0.0)) for day in total.dates]
                stored.credits[d] = Series(list(total.dates), *(list(col) for col in zip(*rows)))
    base_c = {d: _scenario_values(stored.credits[d], scenario) for d in (["total"] + dims if total else [])}
    # Adjusted credits per dimension (the breakdown sums to the total; without one, the total alone).
    parts = (dims or ["total"]) if total else []
    cur = {d: list(base_c[d][0]) for d in parts}
    grow = {m: [0.0] * len(next(iter(stored.growth[m].values())).value) for m in GROWTH_METRICS if m in stored.growth}
    contributions = []

    def credits_sum() -> float:
        return sum(sum(v) for v in cur.values())

    def shares(i: int) -> dict[str, float]:
        whole = sum(base_c[d][0][i] for d in parts)
        return {d: (base_c[d][0][i] / whole if whole else 1 / len(parts)) for d in parts}

    def add_spread(extra: list[float]) -> None:
        for i in range(nc):
            if extra[i]:
                for d, s in shares(i).items():
                    cur[d][i] += extra[i] * s

    for adj in ordered:
        before_c = credits_sum()
        before_u = {m: list(v) for m, v in grow.items()}
        t, note = adj["type"], ""
        if t in ("user_growth", "churn_retention"):
            if t == "user_growth":
                g_users = {m: _growth_users(adj["percent_per_week"], _start_index(adj.get("start_date"), g_as_of or c_as_of),
                                            len(v), rates) for m, v in grow.items()}
                c_users = _growth_users(adj["percent_per_week"], _start_index(adj.get("start_date"), c_as_of or g_as_of),
                                        nc, rates)
                extra_c = [u * rates.credits_per_user_day for u in c_users]
                for m, v in grow.items():
                    scale = {"dau": rates.dau_ratio, "wau": rates.wau_ratio, "mau": 1.0}[m]
                    for i, u in enumerate(g_users[m]):
                        v[i] += u * scale
                note = (f"{rates.new_per_day * 7:.1f} new users per week usually; added users stay "
                        f"{rates.monthly_survival:.0%} per month after their first")
            else:
                extra_c, users = _retained(adj["share"], stored.high_risk, rates, max([nc] + [len(v) for v in grow.values()]))
                for m, v in grow.items():
                    for i in range(len(v)):
                        v[i] += users[m][i]
                expected = sum(u["p"] for u in stored.high_risk)
                note = (f"{len(stored.high_risk)} users at churn risk >= {HIGH_RISK:.0%}"
                        f"{f' on {stored.churn_date}' if stored.churn_date else ''}, {expected:.1f} expected churners")
            if nc:
                add_spread(extra_c[:nc])
        elif t == "agents":
            kind = agents.get(adj["kind"])
            if kind is None:
                known = ", ".join(sorted(agents)) or "none in the last 28 days"
                raise WhatIfInputError(["body", "adjustments", adj["index"], "kind"],
                                       f"no agents of kind {adj['kind']!r} in this workspace (kinds: {known})")
            count = adj["count"] if adj["count"] > 0 else -min(-adj["count"], kind["agents"])
            start = _start_index(adj.get("start_date"), c_as_of) if c_as_of else 0
            for i in range(start, nc):
                for f, s in kind["split"].items():
                    d = f if f in cur else ("total" if "total" in cur else None)
                    if d is not None:
                        cur[d][i] = max(0.0, cur[d][i] + count * kind["per_agent_daily"] * s)
            note = (f"{kind['agents']} {adj['kind']} agent(s) now, {kind['per_agent_daily']:,.1f} credits per day "
                    f"each (median, last 28 days)")
        elif t == "usage_change":
            start = _start_index(adj.get("start_date"), c_as_of) if c_as_of else 0
            for v in cur.values():
                for i in range(start, nc):
                    v[i] *= 1 + adj["percent"] / 100
        elif t == "price":
            if has_credits and adj["dimension"] not in cur:
                known = ", ".join(dims) or "none: the forecast has no breakdown"
                raise WhatIfInputError(["body", "adjustments", adj["index"], "dimension"],
                                       f"unknown feature/service {adj['dimension']!r} (forecast has: {known})")
            if adj["dimension"] in cur:
                cur[adj["dimension"]] = [v * adj["multiplier"] for v in cur[adj["dimension"]]]
            note = "no price elasticity is stored: usage assumed unchanged"
        credits_delta = credits_sum() - before_c
        mau_delta = (grow["mau"][-1] - before_u["mau"][-1]) if grow.get("mau") else None
        text = f"{_describe(adj)}: {_fmt(credits_delta)} credits over {nc} days" if has_credits else _describe(adj)
        if mau_delta is not None and has_growth and t in ("user_growth", "churn_retention"):
            text += f", {_fmt(mau_delta)} MAU on the last day"
        if note:
            text += f" ({note})"
        contributions.append({"index": adj["index"], "type": t, "credits_difference": credits_delta if has_credits else None,
                              "mau_difference": mau_delta, "text": text})
    contributions.sort(key=lambda c: c["index"])
    results = []
    if has_credits:
        # the stored total plus the breakdown's changes (no change: the stored total itself, to the bit)
        adj_total = [base_c['total'][0][i] + sum(cur[d][i] - base_c[d][0][i] for d in parts) for i in range(nc)]
        for d in ["total"] + dims:
            bv, blo, bhi = base_c[d]
            av = adj_total if d == "total" else cur[d]
            results.append(_credit_entry(d, stored, total.dates, bv, blo, bhi, av, contributions,
                                         stored.cumulative if d == "total" else None))
    if has_growth:
        for m in (m for m in metrics if m in GROWTH_METRICS):
            if m in stored.growth:
                results.append(_growth_entry(m, stored, scenario, grow[m], contributions))
    return {
        "workspace": {"id": entity_uuid("workspace", request["workspace_id"]), "external_id": request["external_id"]},
        "as_of_date": c_as_of or g_as_of,
        "credits_as_of_date": c_as_of,
        "growth_as_of_date": g_as_of,
        "base_scenario": scenario,
        "horizon_days": n_days,
        "adjustments": [{k: v for k, v in a.items() if k != "index"} for a in adjustments],
        "metrics": results,
        "explanations": contributions,
    }


def _credit_entry(dim, stored: Stored, dates, bv, blo, bhi, av, contributions, cumulative) -> dict[str, Any]:
    alo, ahi = _scaled(bv, av, blo), _scaled(bv, av, bhi)
    n = len(bv)
    windows = [(f"{k}_days", k) for k in (30, 90) if k <= n] + [("horizon", n)]
    base_tot = {lbl: _total(lbl, bv, cumulative, k) for lbl, k in windows}
    adj_tot = {lbl: _total(lbl, av, cumulative, k) for lbl, k in windows}
    diff = {lbl: adj_tot[lbl]["value"] - base_tot[lbl]["value"] for lbl, _ in windows}
    return {
        "metric": "credits", "dimension": dim, "unit": "credits", "status": "projected",
        "as_of_date": stored.credits_as_of, "model_version": stored.credits_version,
        "confidence_level": stored.confidence_level,
        "baseline": _points(dates, bv, blo, bhi), "adjusted": _points(dates, av, alo, ahi),
        "difference": {"value": diff["horizon"], "basis": f"credits over {n} days",
                       "over_30_days": diff.get("30_days"), "over_90_days": diff.get("90_days"),
                       "baseline_totals": list(base_tot.values()), "adjusted_totals": list(adj_tot.values())},
        "milestones": [],
        "explanations": [c for c in contributions if c["credits_difference"]] if dim == "total" else [],
    }


def _first_reach(dates: list[date], vals: list[float], threshold: float) -> date | None:
    return next((d for d, v in zip(dates, vals) if v >= threshold), None)


def _growth_entry(metric, stored: Stored, scenario, extra, contributions) -> dict[str, Any]:
    series = stored.growth[metric]
    base = series.get(scenario) or series["likely"]
    dates = base.dates
    bv = list(base.value)
    av = [v + e for v, e in zip(bv, extra)]
    alo = [None if lo is None else lo + e for lo, e in zip(base.lower, extra)]
    ahi = [None if hi is None else hi + e for hi, e in zip(base.upper, extra)]
    changed = any(extra)
    milestones = []
    for m in (m for m in stored.milestones if m["target_metric"] == metric):
        before = {k: m[k] for k in ("probability", "date_p10", "date_p50", "date_p90")}
        if changed:  # 10% of the paths reach it about when P90 (best) does, half when P50 does, 90% when P10 does
            after = {"probability": None, **{
                f"date_{q}": _first_reach(series[s].dates, [v + e for v, e in zip(series[s].value, extra)], m["threshold"])
                if s in series else None for q, s in (("p10", "best"), ("p50", "likely"), ("p90", "worst"))}}
        else:
            after = dict(before)
        milestones.append({"threshold": m["threshold"], "kind": m["kind"], "before": before, "after": after})
    last = len(bv) - 1
    return {
        "metric": metric, "dimension": "total", "unit": "users", "status": "projected",
        "as_of_date": stored.growth_as_of, "model_version": stored.growth_version, "confidence_level": 0.95,
        "baseline": _points(dates, bv, list(base.lower), list(base.upper)), "adjusted": _points(dates, av, alo, ahi),
        "difference": {"value": (av[last] - bv[last]) if bv else 0.0, "basis": f"{metric.upper()} on the last day",
                       "over_30_days": None, "over_90_days": None, "baseline_totals": [], "adjusted_totals": []},
        "milestones": milestones,
        "explanations": [c for c in contributions if c["type"] in ("user_growth", "churn_retention")],
    }
