"""Realism report for a generated platform: daily-series statistics and churn learnability.

Usage::

    python bench/realism.py --workspaces 1000 --days 730 --seed 7 [--out DIR] [--churn]

Generates the platform (unless ``--out`` already holds one with a manifest), then prints the
distribution of ``series_realism_stats`` over the workspaces' daily credits (UTC days, from each
workspace's first event to the end date) next to the targets from DESIGN.md. With ``--churn`` it
also fits a gradient-boosting model on point-in-time behavioural features (label: no activity in
the next 30 days) and prints its out-of-time AUC.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from pipelines.simulator.generate import generate_platform  # noqa: E402
from pipelines.simulator.realism import series_realism_stats  # noqa: E402

TARGETS = {"cv": "0.1 .. 3.5, median 0.43", "seasonal_strength": "0.01 .. 0.90, median 0.57",
           "trend_strength": "median 0.53", "acf7": "median 0.74", "zero_share": "some 0.2 .. 0.5"}


def daily_credits(out_dir: Path) -> pd.DataFrame:
    """Daily credits per workspace (UTC days), zero-filled from its first event to the end date."""
    manifest = json.loads((out_dir / "manifest.json").read_text())
    parts = []
    for name in manifest["event_files"]:
        ev = pq.read_table(out_dir / name, columns=["event_time", "workspace_id", "credits"]).to_pandas()
        ev["ds"] = ev["event_time"].dt.tz_localize(None).dt.floor("D")
        parts.append(ev.groupby(["workspace_id", "ds"], as_index=False)["credits"].sum())
    daily = pd.concat(parts, ignore_index=True).rename(columns={"workspace_id": "unique_id", "credits": "y"})
    end = pd.Timestamp(manifest["end_date"])
    filled = []
    for uid, grp in daily.groupby("unique_id"):
        idx = pd.date_range(grp["ds"].min(), end, freq="D")
        y = grp.set_index("ds")["y"].reindex(idx, fill_value=0.0)
        filled.append(pd.DataFrame({"unique_id": uid, "ds": idx, "y": y.to_numpy()}))
    return pd.concat(filled, ignore_index=True)


def churn_auc(out_dir: Path, horizon: int = 30) -> dict:
    """Out-of-time AUC of a churn model on simple point-in-time features.

    Snapshots every 14 days; rows are users active in the 30 days up to T; label: no activity in
    (T, T + horizon]. Trains on snapshots before the last ``horizon + 90`` days, tests after.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    manifest = json.loads((out_dir / "manifest.json").read_text())
    start = np.datetime64(manifest["start_date"])
    n_days = int((np.datetime64(manifest["end_date"]) - start).astype(int)) + 1
    users = pq.read_table(out_dir / "ground_truth" / "users.parquet", columns=["user_id", "workspace_id"]).to_pandas()
    uidx = pd.Series(np.arange(len(users)), index=users["user_id"])
    calls = np.zeros((len(users), n_days), np.float32)
    errors = np.zeros_like(calls)
    feats = np.zeros((len(users), n_days), np.uint8)
    for name in manifest["event_files"]:
        ev = pq.read_table(out_dir / name, columns=["event_time", "user_id", "feature", "status", "count"]).to_pandas()
        ev = ev[ev["user_id"].notna()]
        u = uidx.loc[ev["user_id"]].to_numpy()
        d = ((ev["event_time"].dt.tz_localize(None).to_numpy().astype("datetime64[D]") - start)).astype(int)
        np.add.at(calls, (u, d), ev["count"].to_numpy())
        np.add.at(errors, (u, d), np.where(ev["status"] == "error", ev["count"], 0))
        codes = pd.Categorical(ev["feature"]).codes.astype(np.uint8)
        np.bitwise_or.at(feats, (u, d), (1 << codes).astype(np.uint8))
    active = calls > 0
    first_seen = np.where(active.any(1), active.argmax(1), n_days)
    ws_codes = pd.Categorical(users["workspace_id"]).codes
    ws_dau = np.zeros((ws_codes.max() + 1, n_days))
    np.add.at(ws_dau, ws_codes, active)

    last_active = np.full(len(users), -1000)
    rows = []
    for t in range(n_days - horizon):
        last_active = np.where(active[:, t], t, last_active)
        if t < 120 or t % 14:
            continue
        w30 = slice(t - 29, t + 1)
        pop = active[:, w30].any(1)
        bits = np.bitwise_or.reduce(feats[:, w30], axis=1)
        x = np.column_stack([
            t - last_active, active[:, t - 6:t + 1].sum(1), active[:, w30].sum(1), active[:, t - 89:t + 1].sum(1),
            calls[:, t - 13:t + 1].sum(1), calls[:, t - 41:t - 13].sum(1), errors[:, w30].sum(1),
            np.unpackbits(bits[:, None], axis=1).sum(1), t - first_seen,
            ws_dau[ws_codes, t - 29:t + 1].mean(1),
        ])[pop]
        y = ~active[pop, t + 1:t + 1 + horizon].any(1)
        rows.append((t, x, y))
    cut = n_days - horizon - 90
    train = [r for r in rows if r[0] + horizon < cut]
    test = [r for r in rows if r[0] >= cut]
    x_tr, y_tr = np.vstack([r[1] for r in train]), np.concatenate([r[2] for r in train])
    x_te, y_te = np.vstack([r[1] for r in test]), np.concatenate([r[2] for r in test])
    model = HistGradientBoostingClassifier(max_iter=200, learning_rate=0.1, random_state=0).fit(x_tr, y_tr)
    auc = roc_auc_score(y_te, model.predict_proba(x_te)[:, 1])
    return {"auc": float(auc), "train_rows": len(y_tr), "test_rows": len(y_te),
            "test_positive_rate": float(y_te.mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=1000)
    parser.add_argument("--days", type=int, default=730)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out" / "platform")
    parser.add_argument("--churn", action="store_true", help="also report churn-model AUC")
    args = parser.parse_args()

    if not (args.out / "manifest.json").exists():
        t0 = time.perf_counter()
        s = generate_platform(args.workspaces, args.days, args.seed, args.out)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"generated {s.n_event_rows:,} rows, {s.n_users:,} users, {s.n_agents:,} agents "
              f"in {time.perf_counter() - t0:.1f} s (peak RSS {peak_mb:.0f} MB)")
    daily = daily_credits(args.out)
    stats = series_realism_stats(daily).set_index("unique_id")
    summary = stats.describe(percentiles=[0.1, 0.5, 0.9]).T[["count", "min", "10%", "50%", "90%", "max"]]
    summary["target"] = pd.Series(TARGETS)
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"series with 20-50% zero days: {stats['zero_share'].between(0.2, 0.5).sum()}, "
          f"more than 50%: {(stats['zero_share'] > 0.5).sum()}")
    sizes = pd.read_parquet(args.out / "ground_truth" / "workspaces.parquet").set_index("workspace_id")["n_users"]
    size_class = pd.cut(sizes.reindex(stats.index), [0, 3, 10, 30, 100, 300, np.inf]).rename("users")
    by_size = stats.groupby(size_class, observed=True).median().assign(workspaces=size_class.value_counts())
    print("medians by workspace size:")
    print(by_size.to_string(float_format=lambda v: f"{v:.3f}"))
    if args.churn:
        print("churn model (next 30 days inactive):", churn_auc(args.out))


if __name__ == "__main__":
    main()
