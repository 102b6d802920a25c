"""Feature sets, declared in one place: name, entity, version, as-of grain and typed columns.

Every feature is computed for an as-of date ``T`` from events with ``event_time < T + 1 day`` only.
Changing a set's columns or meaning means bumping its version; both versions can live side by side.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Feature:
    name: str
    dtype: str  # "float" | "int" | "bool" | "str"
    description: str


@dataclass(frozen=True)
class FeatureSet:
    name: str
    entity: str  # "workspace" | "user" | "agent"
    version: int
    description: str
    features: tuple[Feature, ...] = field(default_factory=tuple)
    grain: str = "as_of"  # "as_of": one row per entity as of T; "day": one row per entity and day up to T

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
    version=2,  # v2: users seen within 365 days (v1: 90), rhythm columns (gaps, silence ratio, P(alive))
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
        _f("active_days_365", "int", "active days in the 365 days to T"),
        _f("gap_mean_days", "float", "mean gap between consecutive active days in 365 days (usual_gap_days "
                                     "when seen on one day)"),
        _f("gap_cv", "float", "variability: std / mean of those gaps (0 with fewer than two gaps)"),
        _f("longest_gap_days", "float", "longest gap between two active days in 365 days (0 with none)"),
        _f("ws_usual_gap_days", "float", "workspace: median of its users' mean gaps in 365 days (7 when none)"),
        _f("usual_gap_days", "float", "the user's mean gap shrunk towards the workspace's (models.churn.rhythm)"),
        _f("silence_ratio", "float", "recency_days / usual_gap_days: silence in usual gaps"),
        _f("p_alive", "float", "MBG/NBD probability the user is still alive (pooled MLE as of T)"),
    ),
)

def _agent_features() -> tuple[Feature, ...]:
    from models.error_rates.features import FEATURES  # the columns are computed there (one definition)

    ints = {"active_days_7", "active_days_28", "days_since_call", "age_days", "elevated_days"}
    return tuple(_f(name, "int" if name in ints else "float", text) for name, text in FEATURES.items())


AGENT_DAILY = FeatureSet(
    name="agent_daily",
    entity="agent",
    version=2,  # v2: escalation features (baseline shrunk to workspace x feature, excess, z, trend, users failing)
    description="Calls and failures of an agent as of T against its baseline, for error-rate forecasts and "
                "escalation alerts (models.error_rates); one row per agent with calls in the 90 days to T.",
    features=_agent_features(),
)

GROWTH_MAU_WINDOW_DAYS = 28  # default of the setting PAE_GROWTH_MAU_WINDOW_DAYS (four whole weeks)

WORKSPACE_GROWTH = FeatureSet(
    name="workspace_growth",
    entity="workspace",
    version=1,
    grain="day",
    description="Active-user counts of a workspace per day d up to T, each from events up to the end of d "
                "(events without a user id do not count): one row per workspace and day from its first event. "
                "MAU window: PAE_GROWTH_MAU_WINDOW_DAYS (28) days ending d; a user is reactivated on d when "
                "their previous active day is outside yesterday's MAU window.",
    features=(
        _f("dau", "int", "distinct users active on d"),
        _f("wau", "int", "distinct users active in the 7 days ending d"),
        _f("mau", "int", "distinct users active in the MAU window (28 days) ending d"),
        _f("new_users", "int", "users whose first active day is d"),
        _f("returning_users", "int", "users active on d whose previous active day is within the MAU window "
                                     "before d (they were in yesterday's MAU)"),
        _f("reactivated_users", "int", "users active on d after a dormant gap: previous active day more than "
                                       "the MAU window before d (not in yesterday's MAU)"),
        _f("lost_users", "int", "users who leave the MAU on d: last active exactly one MAU window before d"),
        _f("users_ever", "int", "distinct users seen up to d"),
    ),
)

WORKSPACE_HOURLY = FeatureSet(
    name="workspace_hourly",
    entity="workspace",
    version=1,
    description="Hourly rhythm of a workspace as of T (peak usage): its time zone, inferred from its daily rhythm "
                "unless declared, and its busiest hours (pipelines/features/hourly.py).",
    features=(
        _f("time_zone", "str", "IANA time zone of the workspace's people (inferred, declared or UTC by default)"),
        _f("time_zone_source", "str", "inferred | declared | default: <why no zone could be read>"),
        _f("time_zone_score", "float", "mean weekly correlation of the local-hour profile with a human day"),
        _f("utc_offset_hours", "float", "UTC offset of time_zone at the end of T"),
        _f("hourly_history_hours", "int", "hours from the first hour with events (within 182 days) to the end of T"),
        _f("calls_hour_max_28", "float", "highest calls in one hour over the 28 days to T (alert baseline)"),
        _f("credits_hour_max_28", "float", "highest credits in one hour over the 28 days to T (alert baseline)"),
        _f("calls_hour_mean_28", "float", "mean calls per hour over the 28 days to T"),
        _f("credits_hour_mean_28", "float", "mean credits per hour over the 28 days to T"),
        _f("active_users_hour_max_28", "int", "most distinct users active in one hour over 28 days"),
        _f("active_agents_hour_max_28", "int", "most distinct agents active in one hour over 28 days (concurrency)"),
        _f("zero_hour_share_28", "float", "share of hours without events over 28 days"),
        _f("peak_hour_utc_28", "int", "UTC hour of day with the most calls over 28 days"),
        _f("peak_hour_local_28", "int", "local hour of day with the most calls over 28 days"),
    ),
)

FEATURE_SETS: dict[str, FeatureSet] = {
    fs.name: fs for fs in (WORKSPACE_DAILY, USER_BEHAVIOUR, AGENT_DAILY, WORKSPACE_GROWTH, WORKSPACE_HOURLY)
}
