"""PeakForecaster: hourly forecasts with sample paths, for daily peaks and the capacity they need.

Long-frame contract (``models.forecasting``): ``fit(df)`` on ``(unique_id, ds, y)`` hourly series on their
own clock (the pipeline passes each workspace's local wall clock), ``predict(h, level)`` returns
``(unique_id, ds, yhat, yhat_lower, yhat_upper)``; :meth:`PeakForecaster.sample_paths` returns the joint
draws that daily peaks need (``models.peaks.daily``). A missing hour is a zero.

How it forecasts:

1. **Members** (``models.peaks.members``): weekly seasonal naive, a 4-week weekly profile and a level x
   hour-of-week decomposition by default; MSTL (24 and 168, statsforecast) and the global GBM on request
   (they cost about 1 s per series and 30 s per fit); series with less than ``min_weeks`` (2) weeks of history get the **daily-profile**
   model instead (mean of the same hour over the last 7 days), listed in ``fallbacks`` with the reason.
2. **Rolling-origin backtest**: ``n_windows`` origins, one week apart, ending at the last hour; each member
   forecasts the 168 hours after each origin from the history before it.
3. **Choice per group**: series are grouped by volume (mean hourly value over the last 4 weeks: ``sparse``
   < 1, ``small`` < 20, ``large``) and intermittency (more than half the hours zero: ``/intermittent``).
   Each group takes the candidate (each member alone, each pair averaged, all averaged) with the lowest
   backtest loss: hourly MAE over the series' scale plus the absolute error of each 24-hour block's
   maximum over its actual maximum. Groups with fewer than ``min_group`` series use the overall choice.
4. **Sample paths**: the chosen candidate's backtest errors (in units of the series' mean hourly level), cut
   into 24-hour blocks indexed by hour of day; a path is the forecast with one randomly drawn error block
   per day of the horizon (whole days keep the hours of a busy day busy together), clipped at zero. Blocks
   come from the series' own pool with probability ``n / (n + 14)`` (``n`` its own blocks), else from its
   group's. Short series backtest the daily profile on their last days (24-hour origins) instead. Interval
   bounds are quantiles of the paths. Seeded per series (``seed`` and the series id): the same series gives
   the same paths whatever else is in the frame.
"""
from __future__ import annotations

import hashlib
import itertools
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .members import (
    DAY,
    DEFAULT_MEMBERS,
    MEMBERS,
    WEEK,
    DailyProfile,
    HourlyGBM,
    LevelProfile,
    StatsMSTL,
    WeeklyNaive,
    WeeklyProfile,
)

LEVELS = (80, 95)


@dataclass(frozen=True)
class Fallback:
    unique_id: object
    model: str
    reason: str
    used: str


def _member(name: str, n_jobs: int, seed: int):
    if name == "MSTL":
        return StatsMSTL(n_jobs=n_jobs)
    if name == "GlobalGBM":
        return HourlyGBM(n_jobs=n_jobs, seed=seed)
    if name.startswith("WeeklyProfile"):
        return WeeklyProfile(int(name[len("WeeklyProfile"):] or 4))
    if name == "WeeklyNaive":
        return WeeklyNaive()
    if name == "LevelProfile":
        return LevelProfile()
    raise ValueError(f"unknown peak member {name!r}; choose from {sorted(MEMBERS)}")


def _hours_matrix(df: pd.DataFrame, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(ids, ends, lengths, hist): right-aligned (n, width) hourly values, zero-filled inside each series."""
    ds = pd.to_datetime(df["ds"]).dt.floor("h").to_numpy().astype("datetime64[h]")
    y = pd.to_numeric(df["y"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    codes, ids = pd.factorize(df["unique_id"], sort=True)
    n = len(ids)
    ends = np.full(n, np.datetime64("NaT"), dtype="datetime64[h]")
    starts = np.full(n, np.datetime64("NaT"), dtype="datetime64[h]")
    frame = pd.DataFrame({"c": codes, "t": ds.astype("int64")})
    g = frame.groupby("c")["t"]
    ends[g.max().index.to_numpy()] = g.max().to_numpy().astype("datetime64[h]")
    starts[g.min().index.to_numpy()] = g.min().to_numpy().astype("datetime64[h]")
    lengths = (ends - starts).astype("int64") + 1
    hist = np.full((n, width), np.nan)
    back = (ends[codes] - ds).astype("int64")  # hours before the series' end
    keep = back < width
    # a missing hour inside a series is a zero; duplicates are summed
    inside = np.arange(width)[None, :] >= width - np.minimum(lengths, width)[:, None]
    hist[inside] = 0.0
    np.add.at(hist, (codes[keep], width - 1 - back[keep]), y[keep])
    return np.asarray(ids), ends, lengths, hist


def _groups(hist: np.ndarray) -> np.ndarray:
    recent = hist[:, -4 * WEEK:]
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            level = np.nan_to_num(np.nanmean(recent, axis=1))
            zeros = np.nan_to_num(np.nanmean(recent == 0, axis=1, where=~np.isnan(recent)))
    tier = np.where(level < 1, "sparse", np.where(level < 20, "small", "large"))
    return np.where(zeros > 0.5, np.char.add(tier.astype(str), "/intermittent"), tier.astype(str))


def _block_loss(f: np.ndarray, y: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Per series: hourly MAE / scale + mean over 24-hour blocks of |max f - max y| / max(max y, scale)."""
    ok = ~np.isnan(y)
    mae = np.where(ok, np.abs(f - y), 0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1) / scale
    nb = y.shape[1] // DAY
    fb = f[:, :nb * DAY].reshape(len(f), nb, DAY).max(axis=2)
    yb = y[:, :nb * DAY].reshape(len(y), nb, DAY).max(axis=2)
    peak = np.abs(fb - yb) / np.maximum(yb, scale[:, None])
    return mae + peak.mean(axis=1)


def _relative(f: np.ndarray, y: np.ndarray, end_hour: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Errors ``(y - f) / scale`` (absolute, in units of the series' mean hourly level), cut into 24-step blocks
    and rolled so that column ``k`` is hour of day ``k`` of the series' clock: (n, n_blocks, 24). Errors relative
    to the forecast blew up: a quiet weekend hour's error re-applied to a busy weekday hour."""
    n, h = y.shape
    z = (y - f) / scale[:, None]
    nb = h // DAY
    z = z[:, :nb * DAY].reshape(n, nb, DAY)
    first_hour = (end_hour + 1) % 24  # hour of day of step 0
    idx = (np.arange(DAY)[None, :] + DAY - first_hour[:, None]) % DAY  # step within the block of hour k
    return np.take_along_axis(z, idx[:, None, :], axis=2)


@dataclass
class PeakForecaster:
    """Hourly peak-usage forecaster (module docstring).

    Args:
        members: Member names (``WeeklyNaive``, ``WeeklyProfile4``, ``LevelProfile``, ``MSTL``, ``GlobalGBM``).
        n_windows: Rolling-origin backtest windows (one week each).
        n_paths: Sample paths per series.
        min_weeks: Shorter series get the daily-profile model.
        history_weeks: Weeks of history the members see.
        min_group: Smallest group that chooses its own candidate.
        n_jobs: Processes (MSTL) and threads (GBM).
        seed: Seed of the paths and the GBM.
        cache: Member forecasts shared between fits (e.g. a holdout fit and the production fit on the same
            data: their backtest origins overlap), keyed by member, horizon and the history's hash.
    """

    members: tuple[str, ...] = DEFAULT_MEMBERS
    n_windows: int = 3
    n_paths: int = 200
    min_weeks: int = 2
    history_weeks: int = 8
    min_group: int = 10
    n_jobs: int = 1
    seed: int = 0
    cache: dict | None = None
    fallbacks: list[Fallback] = field(default_factory=list, init=False)

    name = "PeakEnsemble"

    # ------------------------------------------------------------------ fitting
    def _member_forecast(self, name: str, hist: np.ndarray, ends: np.ndarray, h: int) -> np.ndarray:
        if len(hist) == 0:
            return np.zeros((0, h))
        key = None
        if self.cache is not None:
            digest = hashlib.sha1(np.ascontiguousarray(np.nan_to_num(hist[:, -self.history_weeks * WEEK:],
                                                                     nan=-1.0)).tobytes())
            digest.update(ends.astype("int64").tobytes())
            key = (name, h, digest.hexdigest())
            if key in self.cache:
                return self.cache[key]
        f = np.maximum(np.nan_to_num(_member(name, self.n_jobs, self.seed).forecast(hist, ends, h)), 0.0)
        if key is not None:
            self.cache[key] = f
        return f

    def fit(self, df: pd.DataFrame, freq: str = "h") -> PeakForecaster:
        """Backtest the members, choose per group and collect the error blocks of the paths."""
        if freq != "h":
            raise ValueError(f"PeakForecaster forecasts hourly series: freq must be 'h', got {freq!r}.")
        missing = {"unique_id", "ds", "y"} - set(df.columns)
        if missing:
            raise ValueError(f"Input lacks columns {sorted(missing)}: give a long frame (unique_id, ds, y).")
        width = (self.history_weeks + self.n_windows) * WEEK
        self.ids_, self.ends_, self.lengths_, self.hist_ = _hours_matrix(df, width)
        n = len(self.ids_)
        recent = self.hist_[:, -4 * WEEK:]
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.scale_ = np.maximum(np.nan_to_num(np.nanmean(recent, axis=1)), 1e-6)
        self.group_ = _groups(self.hist_)
        self.short_ = self.lengths_ < self.min_weeks * WEEK
        self.fallbacks = [Fallback(self.ids_[i], self.name, f"less than {self.min_weeks} weeks of hourly history "
                                   f"({int(self.lengths_[i])} hours): daily-profile model", "DailyProfile")
                          for i in np.flatnonzero(self.short_)]
        names = list(self.members)
        # backtest: forecasts (member, window) of the long series with min_weeks before the origin
        self.bt_ = {m: np.full((self.n_windows, n, WEEK), np.nan) for m in names}
        self.bt_actual_ = np.full((self.n_windows, n, WEEK), np.nan)
        for j in range(1, self.n_windows + 1):
            cut = width - WEEK * j
            rows = np.flatnonzero(self.lengths_ - WEEK * j >= self.min_weeks * WEEK)
            if not len(rows):
                continue
            train = self.hist_[rows, :cut]
            origin_ends = self.ends_[rows] - np.timedelta64(WEEK * j, "h")
            self.bt_actual_[j - 1, rows] = self.hist_[rows, cut:cut + WEEK]
            for m in names:
                self.bt_[m][j - 1, rows] = self._member_forecast(m, train, origin_ends, WEEK)
        self._choose(names)
        self._error_blocks()
        return self

    def _candidates(self, names: list[str]) -> list[tuple[str, ...]]:
        singles = [(m,) for m in names]
        pairs = list(itertools.combinations(names, 2))
        return singles + pairs + ([tuple(names)] if len(names) > 2 else [])

    def _combo(self, combo: tuple[str, ...], source: dict) -> np.ndarray:
        return sum(source[m] for m in combo) / len(combo)

    def _choose(self, names: list[str]) -> None:
        cands = self._candidates(names)
        n = len(self.ids_)
        losses = np.full((len(cands), n), np.nan)
        for c, combo in enumerate(cands):
            per_window = []
            for j in range(self.n_windows):
                y = self.bt_actual_[j]
                ok = ~np.isnan(y).all(axis=1)
                loss = np.full(n, np.nan)
                if ok.any():
                    f = self._combo(combo, {m: self.bt_[m][j] for m in names})
                    loss[ok] = _block_loss(f[ok], y[ok], self.scale_[ok])
                per_window.append(loss)
            with np.errstate(invalid="ignore"):
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    losses[c] = np.nanmean(np.stack(per_window), axis=0)
        self.candidates_ = cands
        scored = ~np.isnan(losses).all(axis=0)
        overall = int(np.nanargmin(np.nanmean(losses[:, scored], axis=1))) if scored.any() else 0
        self.choice_ = {}
        rows = []
        for g in sorted(set(self.group_)):
            members = (self.group_ == g) & scored
            if members.sum() >= self.min_group:
                k = int(np.nanargmin(np.nanmean(losses[:, members], axis=1)))
            else:
                k = overall
            self.choice_[g] = cands[k]
            rows.append({"group": g, "n_series": int((self.group_ == g).sum()), "n_backtested": int(members.sum()),
                         "choice": "+".join(cands[k]), "loss": float(np.nanmean(losses[k, members])) if members.any()
                         else float("nan")})
        self.overall_choice_ = cands[overall]
        self.choice_table_ = pd.DataFrame(rows)
        self.backtest_loss_ = pd.DataFrame({"candidate": ["+".join(c) for c in cands],
                                            "loss": [float(np.nanmean(losses[c][scored])) if scored.any()
                                                     else np.nan for c in range(len(cands))]})

    def weights(self) -> pd.DataFrame:
        """Per series: its group, the chosen candidate and each member's weight (short series: DailyProfile)."""
        rows = []
        for i, uid in enumerate(self.ids_):
            combo = ("DailyProfile",) if self.short_[i] else self.choice_[self.group_[i]]
            rows.append({"unique_id": uid, "group": self.group_[i], "choice": "+".join(combo),
                         **{m: (1 / len(combo) if m in combo else 0.0) for m in (*self.members, "DailyProfile")}})
        return pd.DataFrame(rows)

    def _error_blocks(self) -> None:
        """Relative error blocks (n, n_blocks, 24), indexed by hour of day of the series' clock."""
        n = len(self.ids_)
        end_hour = (self.ends_.astype("int64") % 24)
        blocks = []
        for j in range(self.n_windows):
            y = self.bt_actual_[j]
            f = np.zeros_like(y)
            for g, combo in self.choice_.items():
                rows = self.group_ == g
                f[rows] = self._combo(combo, {m: self.bt_[m][j][rows] for m in self.members})
            blocks.append(_relative(f, y, end_hour, self.scale_))
        long_blocks = np.concatenate(blocks, axis=1) if blocks else np.full((n, 0, DAY), np.nan)
        # short series: the daily profile backtested at 24-hour origins over their last days
        short = np.flatnonzero(self.short_)
        sb = np.full((n, 7, DAY), np.nan)
        width = self.hist_.shape[1]
        for j in range(1, 8):
            rows = short[self.lengths_[short] >= DAY * (j + 1)]
            if not len(rows):
                continue
            cut = width - DAY * j
            f = DailyProfile().forecast(self.hist_[rows, :cut], self.ends_[rows], DAY)
            y = self.hist_[rows, cut:cut + DAY]
            sb[rows, j - 1] = _relative(f, y, end_hour[rows], self.scale_[rows])[:, 0]
        self.blocks_ = np.concatenate([long_blocks, sb], axis=1)
        valid = ~np.isnan(self.blocks_).any(axis=2)
        self.n_blocks_ = valid.sum(axis=1)
        self.group_pool_ = {g: self.blocks_[(self.group_ == g)][valid[self.group_ == g]] for g in set(self.group_)}
        everything = self.blocks_[valid]
        self.all_pool_ = everything if len(everything) else np.zeros((1, DAY))

    # ------------------------------------------------------------------ forecasting
    def point_forecast(self, h: int) -> np.ndarray:
        """(n, h) point forecast: the group's chosen combination, or the daily profile for short series."""
        n = len(self.ids_)
        out = np.zeros((n, h))
        long_rows = np.flatnonzero(~self.short_)
        if len(long_rows):
            fc = {m: self._member_forecast(m, self.hist_[long_rows], self.ends_[long_rows], h) for m in self.members}
            for g, combo in self.choice_.items():
                sel = self.group_[long_rows] == g
                out[long_rows[sel]] = self._combo(combo, {m: fc[m][sel] for m in self.members})
        short = np.flatnonzero(self.short_)
        if len(short):
            out[short] = DailyProfile().forecast(self.hist_[short], self.ends_[short], h)
        return np.maximum(out, 0.0)

    def sample_paths(self, h: int, point: np.ndarray | None = None) -> np.ndarray:
        """(n, n_paths, h) joint draws of the next ``h`` hours (module docstring, step 4)."""
        point = self.point_forecast(h) if point is None else point
        n = len(self.ids_)
        nb = -(-h // DAY)
        end_hour = (self.ends_.astype("int64") % 24)
        out = np.empty((n, self.n_paths, h))
        valid = ~np.isnan(self.blocks_).any(axis=2)
        for i in range(n):
            rng = np.random.default_rng([self.seed, zlib.crc32(str(self.ids_[i]).encode())])
            own = self.blocks_[i][valid[i]]
            pool = self.group_pool_.get(self.group_[i])
            pool = pool if pool is not None and len(pool) else self.all_pool_
            p_own = len(own) / (len(own) + 14.0)
            use_own = rng.random((self.n_paths, nb)) < p_own
            pick_own = rng.integers(0, max(len(own), 1), (self.n_paths, nb))
            pick_pool = rng.integers(0, len(pool), (self.n_paths, nb))
            z = np.where(use_own[..., None], own[pick_own] if len(own) else pool[pick_pool], pool[pick_pool])
            # z is (paths, blocks, hour of day): lay it out along the steps from the series' next hour
            hours = (end_hour[i] + 1 + np.arange(h)) % DAY
            zs = z[:, np.arange(h) // DAY, hours]
            out[i] = np.maximum(point[i] + zs * self.scale_[i], 0.0)
        return out

    def future_ds(self, h: int) -> np.ndarray:
        return self.ends_[:, None] + np.arange(1, h + 1).astype("timedelta64[h]")[None, :]

    def predict(self, h: int = WEEK, level: int = 95, paths: np.ndarray | None = None) -> pd.DataFrame:
        """``(unique_id, ds, yhat, yhat_lower, yhat_upper)``: the point forecast and path quantiles at ``level``."""
        point = self.point_forecast(h)
        paths = self.sample_paths(h, point) if paths is None else paths
        lo, hi = np.quantile(paths, [(1 - level / 100) / 2, 1 - (1 - level / 100) / 2], axis=1)
        n = len(self.ids_)
        return pd.DataFrame({
            "unique_id": np.repeat(self.ids_, h),
            "ds": self.future_ds(h).ravel().astype("datetime64[ns]"),
            "yhat": point.ravel(),
            "yhat_lower": np.minimum(lo, point).ravel(),
            "yhat_upper": np.maximum(hi, point).ravel(),
        }) if n else pd.DataFrame(columns=["unique_id", "ds", "yhat", "yhat_lower", "yhat_upper"])
