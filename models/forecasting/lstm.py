"""GlobalLSTM: one small LSTM for all series of a panel, with direct multi-step output (PyTorch, CPU).

Each training example is a window of ``context_seasons`` seasons (16 weeks = 112 days for daily data)
ending at a cutoff, divided by its level (the mean absolute value of its last four seasons), and the
next ``horizon`` values divided by the same level. The LSTM reads the window one season per step
(a week of 7 values and their observed-mask per step: 16 steps instead of 112, so training is ~7x
cheaper and the weekly shape is explicit), together with static features of the window: the day of
week (and hour, for hourly data) of the first forecast step, the log level and the observed share. A
head maps the last hidden state, plus a linear skip from the last four seasons, to all ``horizon``
steps at once. Loss: L1 on the normalised values (the median forecast, as MASE judges).

Training is bounded: at most ``max_windows`` windows (a seeded sample of all cutoffs in the last
``train_seasons`` seasons), at most ``max_epochs`` epochs, and early stopping on a time-ordered
validation split (windows whose cutoff is in the last ``validation_steps`` steps of the panel; training
windows' targets end before them), keeping the best epoch's weights. Seeded and deterministic for a
given thread count; ``n_jobs`` (capped at 2) sets ``torch.set_num_threads`` during fit and predict.

Intervals: per step, the validation windows' absolute normalised errors at the requested level, times
the series' level (the ensemble replaces them with conformal intervals from its backtest). Horizons
beyond ``horizon`` are forecast block by block, feeding forecasts back as history.

Series shorter than two seasons or constant get the window average (as for every member). Series
shorter than the context are left-padded and masked. If no series is long enough to make a training
and a validation window (``min_context + 2 * horizon + validation_steps`` points), fitting raises a
:class:`ForecastInputError` saying so; inside ``fit`` that becomes the documented fallback of every
member: each series gets the seasonal naive forecast, with the reason in ``fallbacks``.
"""
from __future__ import annotations

import copy
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from .base import BaseForecaster
from .checks import ForecastInputError
from .panel import Panel

logger = logging.getLogger(__name__)

_LEVEL_SEASONS = 4  # the level of a window: mean |y| over its last four seasons
_SKIP_SEASONS = 4  # seasons fed to the head's linear skip
_MAX_THREADS = 2


def torch_available() -> bool:
    """Whether PyTorch can be imported (it is installed with pip, not uv: see the Makefile)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


@contextmanager
def _torch_threads(n: int) -> Iterator[Any]:
    """Import torch and run with ``n`` threads (at most 2), restoring the previous count afterwards.

    Idle OpenMP threads are told to sleep (read when torch is first imported): on shared, busy cores
    spinning threads made a 2-thread training step 25x slower than a 1-thread one here.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(max(1, min(int(n), _MAX_THREADS)))
    try:
        yield torch
    finally:
        torch.set_num_threads(before)


def _network(torch: Any, season: int, n_static: int, hidden: int, layers: int, horizon: int) -> Any:
    nn = torch.nn

    class SeasonLSTM(nn.Module):
        """LSTM over seasons (values + mask + static features per step); head on the last state."""

        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(2 * season + n_static, hidden, num_layers=layers, batch_first=True)
            self.head = nn.Sequential(nn.Linear(hidden + n_static, 2 * hidden), nn.ReLU(),
                                      nn.Linear(2 * hidden, horizon))
            self.skip = nn.Linear(_SKIP_SEASONS * season, horizon)

        def forward(self, seq: Any, static: Any) -> Any:
            steps = seq.shape[1]
            out, _ = self.lstm(torch.cat([seq, static[:, None, :].expand(-1, steps, -1)], dim=2))
            recent = seq[:, -_SKIP_SEASONS:, :season].reshape(seq.shape[0], -1)
            return self.head(torch.cat([out[:, -1], static], dim=1)) + self.skip(recent)

    return SeasonLSTM()


def _level(windows: np.ndarray, season: int) -> np.ndarray:
    """Mean |y| of each window's last four seasons, else of the whole window, else 1 (all zero or empty)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are handled below
        level = np.nanmean(np.abs(windows[:, -_LEVEL_SEASONS * season:]), axis=1)
        level = np.where(np.isfinite(level) & (level > 0), level, np.nanmean(np.abs(windows), axis=1))
    return np.where(np.isfinite(level) & (level > 0), level, 1.0)


class GlobalLSTM(BaseForecaster):
    """One LSTM trained on level-normalised windows of all series (see the module docstring).

    Args:
        horizon: Steps forecast directly by the network (longer horizons go block by block).
        context_seasons: Seasons of history per window (16: 112 days for daily data).
        hidden_size: LSTM units.
        num_layers: Stacked LSTM layers.
        max_windows: Cap on training windows (a seeded sample above it).
        max_epochs: Cap on epochs.
        patience: Epochs without a better validation loss before stopping.
        batch_size: Windows per gradient step.
        learning_rate: Adam learning rate.
        validation_steps: Cutoffs in the last this many steps of the panel form the validation split.
        train_seasons: Seasons of recent history whose cutoffs may become training windows.
        n_jobs: Torch threads (at most 2).
        seed: Seed for window sampling, weights and batch order.
        alias: Column name in backtests (default ``"LSTM"``).
        fill: Gap handling, see :meth:`Panel.from_frame`.
    """

    _default_name = "LSTM"

    def __init__(
        self,
        *,
        horizon: int = 30,
        context_seasons: int = 16,
        hidden_size: int = 64,
        num_layers: int = 1,
        max_windows: int = 16_000,
        max_epochs: int = 8,
        patience: int = 3,
        batch_size: int = 256,
        learning_rate: float = 6e-3,
        validation_steps: int = 28,
        train_seasons: int = 52,
        n_jobs: int = 1,
        seed: int = 0,
        alias: str | None = None,
        fill: str | None = "zero",
    ):
        super().__init__(alias=alias, fill=fill)
        for name, value, low in (("horizon", horizon, 1), ("context_seasons", context_seasons, _SKIP_SEASONS),
                                 ("hidden_size", hidden_size, 1), ("num_layers", num_layers, 1),
                                 ("max_windows", max_windows, 1), ("max_epochs", max_epochs, 1),
                                 ("patience", patience, 1), ("batch_size", batch_size, 1),
                                 ("validation_steps", validation_steps, 1), ("train_seasons", train_seasons, 1)):
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ForecastInputError(f"GlobalLSTM: {name} must be an integer >= {low}, got {value!r}.")
        if not learning_rate > 0:
            raise ForecastInputError(f"GlobalLSTM: learning_rate must be > 0, got {learning_rate!r}.")
        self.horizon = horizon
        self.context_seasons = context_seasons
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.max_windows = max_windows
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_steps = validation_steps
        self.train_seasons = train_seasons
        self.n_jobs = n_jobs
        self.seed = seed

    # ----------------------------------------------------------------- windows

    def _context(self, season: int) -> int:
        return self.context_seasons * season

    def min_train_length(self, season: int) -> int:
        """Points the longest series needs for one training and one validation window."""
        return 2 * season + 2 * self.horizon + self.validation_steps

    def _static(self, first_step: np.ndarray, level: np.ndarray, observed: np.ndarray, freq: str) -> np.ndarray:
        """Static features: calendar one-hots of the first forecast step, standardised log level, observed share."""
        day = first_step // 24 if freq == "h" else first_step
        cols = [np.eye(7, dtype=np.float32)[(day + 3) % 7]]  # 1970-01-01 was a Thursday; Monday = 0
        if freq == "h":
            cols.append(np.eye(24, dtype=np.float32)[first_step % 24])
        log_level = (np.log1p(level) - self._log_level_mean) / self._log_level_std
        cols += [log_level[:, None].astype(np.float32), observed[:, None].astype(np.float32)]
        return np.concatenate(cols, axis=1)

    def _inputs(self, windows: np.ndarray, first_step: np.ndarray, freq: str, season: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Network inputs from raw windows (n, context) with NaN where a series has no value.

        Returns:
            ``(seq, static, level)``: seq (n, seasons, 2 * season), static (n, k), level (n,).
        """
        observed = np.isfinite(windows)
        values = np.where(observed, windows, 0.0)
        level = _level(windows, season)
        n = windows.shape[0]
        seq = np.concatenate([(values / level[:, None]).reshape(n, self.context_seasons, season),
                              observed.reshape(n, self.context_seasons, season)], axis=2).astype(np.float32)
        static = self._static(first_step, level, observed.mean(axis=1), freq)
        return seq, static, level

    def _training_windows(self, panel: Panel) -> dict[str, np.ndarray]:
        """Sampled training and validation windows (raw values), time-ordered split across series."""
        m, H, L = panel.season_length, self.horizon, self._context(panel.season_length)
        need = self.min_train_length(m)
        longest = int(panel.lengths.max())
        if longest < need:
            raise ForecastInputError(
                f"GlobalLSTM needs a series with at least {need} points to train (two seasons of context, "
                f"2 x horizon {H} and validation_steps {self.validation_steps}); the longest has {longest}. "
                f"Use a shorter horizon or leave the LSTM out.")
        width = min(longest, self.train_seasons * m + L + H)
        hist = np.concatenate([np.full((panel.n_series, L), np.nan), panel.padded(width)], axis=1)
        finite = np.isfinite(hist)
        count = np.zeros((panel.n_series, hist.shape[1] + 1))
        np.cumsum(finite, axis=1, out=count[:, 1:])
        # cutoff c = last input column; L columns of input, H finite targets after it, >= 2 seasons observed
        cols = np.arange(L - 1, hist.shape[1] - H)
        n_obs = count[:, cols + 1] - count[:, cols + 1 - L]
        n_target = count[:, cols + 1 + H] - count[:, cols + 1]
        rows, ci = np.nonzero((n_obs >= 2 * m) & (n_target == H))
        cut = cols[ci]
        abs_cut = panel.end_index[rows] - (hist.shape[1] - 1 - cut)
        last = abs_cut.max()
        val = abs_cut > last - self.validation_steps
        train = abs_cut + H <= last - self.validation_steps
        if not train.any():
            raise ForecastInputError(
                f"GlobalLSTM: no training window ends before the validation split; it needs a series with at "
                f"least {need} points (the longest has {longest}).")
        rng = np.random.default_rng(self.seed)

        def sample(mask: np.ndarray, cap: int) -> np.ndarray:
            idx = np.flatnonzero(mask)
            return np.sort(rng.choice(idx, cap, replace=False)) if idx.size > cap else idx

        out = {}
        for name, idx in (("train", sample(train, self.max_windows)),
                          ("val", sample(val, max(256, self.max_windows // 4)))):
            grid = cut[idx][:, None] + np.arange(-L + 1, H + 1)
            block = hist[rows[idx][:, None], grid]
            out[f"{name}_x"], out[f"{name}_y"] = block[:, :L], block[:, L:]
            out[f"{name}_first"] = abs_cut[idx] + 1
        return out

    # ----------------------------------------------------------------- fit / predict

    def _fit(self, panel: Panel) -> None:
        m, freq = panel.season_length, panel.freq
        data = self._training_windows(panel)
        log_level = np.log1p(_level(data["train_x"], m))
        self._log_level_mean = float(log_level.mean())
        self._log_level_std = float(log_level.std()) if log_level.std() > 0 else 1.0
        sets = {}
        for name in ("train", "val"):
            seq, static, lvl = self._inputs(data[f"{name}_x"], data[f"{name}_first"], freq, m)
            sets[name] = (seq, static, (data[f"{name}_y"] / lvl[:, None]).astype(np.float32))
        with _torch_threads(self.n_jobs) as torch:
            torch.manual_seed(self.seed)
            net = _network(torch, m, sets["train"][1].shape[1], self.hidden_size, self.num_layers, self.horizon)
            train = [torch.from_numpy(a) for a in sets["train"]]
            val = [torch.from_numpy(a) for a in sets["val"]]
            opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
            gen = torch.Generator().manual_seed(self.seed)
            best, best_state, stale, history = np.inf, None, 0, []
            for _epoch in range(self.max_epochs):
                net.train()
                for batch in torch.randperm(train[0].shape[0], generator=gen).split(self.batch_size):
                    opt.zero_grad()
                    loss = torch.nn.functional.l1_loss(net(train[0][batch], train[1][batch]), train[2][batch])
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                    opt.step()
                val_err = self._run(torch, net, val[0], val[1]) - sets["val"][2]
                val_loss = float(np.abs(val_err).mean())
                history.append(val_loss)
                if val_loss < best - 1e-6:
                    best, best_state, stale = val_loss, copy.deepcopy(net.state_dict()), 0
                    self._val_abs_err = np.sort(np.abs(val_err), axis=0)
                else:
                    stale += 1
                    if stale >= self.patience:
                        break
            net.load_state_dict(best_state)
        self._net = net
        self.n_windows_ = {"train": int(train[0].shape[0]), "validation": int(val[0].shape[0])}
        self.epochs_ = len(history)
        self.validation_loss_ = history
        logger.info("%s: %d training / %d validation windows, %d epochs, best validation L1 %.4f",
                    self.name, self.n_windows_["train"], self.n_windows_["validation"], self.epochs_, best)
        self._forward(panel)

    @staticmethod
    def _run(torch: Any, net: Any, seq: Any, static: Any, chunk: int = 4096) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return np.concatenate([net(s, t).numpy() for s, t in zip(seq.split(chunk), static.split(chunk))])

    def _forward(self, panel: Panel) -> None:
        """Keep the trained network; take the new history (its last context window per series)."""
        m = panel.season_length
        self._history = panel.padded(self._context(m))
        self._end_index = panel.end_index
        self._freq, self._season = panel.freq, m

    def _predict(self, h: int, levels: Sequence[int]) -> tuple[np.ndarray, dict]:
        L, H = self._history.shape[1], self.horizon
        n_blocks = -(-h // H)
        buf = np.concatenate([self._history, np.full((self._history.shape[0], n_blocks * H), np.nan)], axis=1)
        first_level = None
        with _torch_threads(self.n_jobs) as torch:
            for b in range(n_blocks):
                window = buf[:, b * H: b * H + L]
                seq, static, level = self._inputs(window, self._end_index + 1 + b * H, self._freq, self._season)
                if first_level is None:
                    first_level = level
                pred = self._run(torch, self._net, torch.from_numpy(seq), torch.from_numpy(static))
                buf[:, L + b * H: L + (b + 1) * H] = pred * level[:, None]
        mean = buf[:, L: L + h]
        steps = np.arange(h)
        bands = {}
        for lv in levels:
            q = self._val_abs_err[min(int(np.ceil(lv / 100 * len(self._val_abs_err))), len(self._val_abs_err)) - 1]
            q = np.maximum.accumulate(q)
            half_norm = np.where(steps < H, q[np.minimum(steps, H - 1)], q[-1] * np.sqrt((steps + 1) / H))
            half = first_level[:, None] * half_norm[None, :]
            bands[lv] = (mean - half, mean + half)
        return mean, bands
