"""Feature sets, declared in one place: name, entity, version, as-of grain and typed columns.

Every feature is computed for an as-of date ``T`` from events with ``event_time < T + 1 day`` only.
Changing a set's columns or meaning means bumping its version; both versions can live side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "float" | "int" | "bool"
    description: str


@dataclass(frozen=True)
class FeatureSet:
    name: str
    entity: str  # "workspace" | "user" | "agent"
    version: int
    description: str
    features: tuple[Feature, ...] = field(default_factory=tuple)

    @property
    def columns(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def dtypes(self) -> dict[str, str]:
        return {f.name: f.dtype for f in self.features}

    @property
    def key(self) -> str:
        return f"{self.name}/v{self.version}"


def _f(name: str, dtype: str, description: str) -> Feature:
    return Feature(name, dtype, description)


WEEKLY_SEQUENCE_WEEKS = 8

WORKSPACE_DAILY = FeatureSet(
    name="workspace_daily",
    entity="workspace",
    version=1,
    description="Daily credit series of a workspace as of T: lags, rolling stats, STL, calendar.",
    features=(
        _f("credits_t", "float", "credits on day T"),
        _f("credits_lag_1", "float", "credits on T-1"),
        _f("credits_lag_7", "float", "credits on T-7"),
        _f("credits_lag_30", "float", "credits on T-30"),
        *[
            _f(f"credits_roll_{w}_{stat}", "float", f"{stat} of daily credits over the {w} days to T")
            for w in (7, 28)
            for stat in ("mean", "std", "min", "max")
        ],
        _f("calls_roll_7_mean", "float", "mean daily calls over 7 days"),
        _f("errors_roll_7_mean", "float", "mean daily errors over 7 days"),
        _f("error_rate_28", "float", "errors / calls over 28 days"),
        _f("active_users_t", "int", "distinct users active on T"),
        _f("active_users_7", "int", "distinct users active in the 7 days to T"),
        _f("active_users_28", "int", "distinct users active in the 28 days to T"),
        _f("users_ever", "int", "distinct users seen up to T"),
        _f("n_features_28", "int", "distinct features/services used in 28 days"),
        _f("history_days", "int", "days from first event to T"),
        _f("zero_share_28", "float", "share of days with no credits in 28 days"),
        _f("stl_trend_t", "float", "STL (period 7) trend at T over the last 182 days"),
        _f("stl_trend_slope_28", "float", "change of the STL trend over 28 days, per day"),
        _f("seasonal_strength_7", "float", "STL weekly seasonal strength, max(0, 1 - var(R)/var(S+R))"),
        _f("trend_strength", "float", "STL trend strength, max(0, 1 - var(R)/var(T+R))"),
        _f("dow_t", "int", "day of week of T (0 = Monday)"),
        _f("is_weekend_t", "bool", "T is Saturday or Sunday"),
        _f("is_holiday_t", "bool", "T is a public holiday in the calendar country"),
        _f("credits_wow_ratio", "float", "credits last 7 days / previous 7 days (smoothed)"),
        _f("credits_per_active_user_28", "float", "interaction: credits per active user in 28 days"),
    ),
)

USER_BEHAVIOUR = FeatureSet(
    name="user_behaviour",
    entity="user",
    version=1,
    description="Behaviour of a user in a workspace as of T, for churn scoring (point in time).",
    features=(
        _f("tenure_days", "int", "days since the user's first event"),
        _f("recency_days", "int", "days since the user's last active day"),
        _f("frequency_90", "float", "active days / min(tenure, 90)"),
        _f("active_days_7", "int", "active days in the 7 days to T"),
        _f("active_days_28", "int", "active days in the 28 days to T"),
        _f("active_days_prev_28", "int", "active days in the 28 days before those (T-55..T-28)"),
        _f("active_days_90", "int", "active days in the 90 days to T"),
        _f("calls_7", "float", "calls in 7 days"),
        _f("calls_28", "float", "calls in 28 days"),
        _f("credits_28", "float", "credits in 28 days"),
        _f("credits_90", "float", "credits in 90 days"),
        _f("activity_slope_8w", "float", "least-squares slope of weekly active days over 8 weeks"),
        _f("wow_ratio", "float", "active days last 7 / previous 7 (smoothed)"),
        _f("features_used_28", "int", "distinct features used in 28 days"),
        _f("features_used_90", "int", "distinct features used in 90 days"),
        _f("errors_28", "float", "error calls in 28 days"),
        _f("error_rate_28", "float", "error calls / calls in 28 days"),
        *[
            _f(f"weekly_active_w{i}", "int", f"active days in week -{i} (w0 = the 7 days to T)")
            for i in range(WEEKLY_SEQUENCE_WEEKS)
        ],
        _f("ws_active_users_28", "int", "workspace: distinct active users in 28 days"),
        _f("ws_users_ever", "int", "workspace: distinct users seen up to T"),
        _f("ws_credits_trend", "float", "workspace: credits last 28 days / previous 28 (smoothed)"),
        _f("credits_per_active_day_28", "float", "interaction: credits per active day in 28 days"),
        _f("share_of_ws_credits_28", "float", "interaction: user's share of workspace credits in 28 days"),
        _f("engagement_drop_28", "float", "interaction: active_days_prev_28 - active_days_28"),
    ),
)

AGENT_DAILY = FeatureSet(
    name="agent_daily",
    entity="agent",
    version=1,
    description="Calls and error rate of an agent as of T, with rolling statistics.",
    features=(
        _f("calls_t", "float", "calls on T"),
        _f("errors_t", "float", "error calls on T"),
        _f("error_rate_t", "float", "errors / calls on T"),
        *[
            _f(f"error_rate_roll_{w}_{stat}", "float", f"{stat} of daily error rate over {w} days")
            for w in (7, 28)
            for stat in ("mean", "std", "max")
        ],
        _f("calls_roll_7_mean", "float", "mean daily calls over 7 days"),
        _f("calls_roll_28_mean", "float", "mean daily calls over 28 days"),
        _f("error_rate_trend_7", "float", "error rate last 7 days minus previous 7"),
        _f("error_rate_zscore_t", "float", "interaction: (error_rate_t - 28d mean) / 28d std"),
        _f("active_days_28", "int", "days with calls in 28 days"),
    ),
)

FEATURE_SETS: dict[str, FeatureSet] = {fs.name: fs for fs in (WORKSPACE_DAILY, USER_BEHAVIOUR, AGENT_DAILY)}
