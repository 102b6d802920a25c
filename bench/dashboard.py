"""The dashboard's budget in a real browser (Debian's Chromium, playwright-core), on a seeded 1,000-workspace
database: first meaningful paint (the summary cards with numbers and the forecast drawn, from navigation, cold
cache, key already entered for the tab) against 2.5 s, and how the churn matrix of a 5,000-user workspace
responds (all users loaded, sort, sort by a factor, open a user, select all, scroll to the end).

    python bench/dashboard.py                       # 1,000 workspaces, 5,000 users in ws-0001, 3 runs
    python bench/dashboard.py --workspaces 200 --users 20000 --runs 5

Uses DATABASE_URL's server (a throwaway database), builds the bundle (`make web`) and starts `pae serve`.
Prints each run and the medians; exits 1 when the median first meaningful paint is over the budget.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import throwaway_database  # noqa: E402
from core.db import get_engine  # noqa: E402
from services.keys import create_api_key  # noqa: E402
from tests.web.seed import bulk_platform  # noqa: E402
from tests.web.server import browser_missing, build_bundle, pae_serve, run_node  # noqa: E402

PEPPER = "bench-dashboard-pepper"
BUDGET_MS = 2500


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspaces", type=int, default=1000)
    ap.add_argument("--users", type=int, default=5000, help="scored users of the first workspace")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    reason = browser_missing()
    if reason:
        print(f"cannot run: {reason}")
        return 2
    build_bundle()
    with throwaway_database("pae_bench_dashboard") as url, tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        ws = bulk_platform(url, workspaces=args.workspaces, big_users=args.users)
        engine = get_engine(url=url)
        key = create_api_key(engine, [ws], "bench", pepper=PEPPER)
        engine.dispose()
        print(f"seeded {args.workspaces} workspaces, {args.users} scored users in {ws} in {time.perf_counter() - t0:.1f}s")
        with pae_serve(url, PEPPER, Path(tmp), Path(tmp) / "serve.log") as base:
            code, out, err = run_node("budget.mjs", {"BASE_URL": base, "KEY": key, "WS": ws, "RUNS": str(args.runs)},
                                      timeout=600)
    if code or not out.get("ok"):
        print(f"failed: {out.get('error')}\n{err}")
        return 1
    cols = ["fcp_ms", "first_meaningful_paint_ms", "churn_matrix_ms", "all_views_settled_ms", "longest_task_ms",
            "sort_ms", "sort_by_factor_ms", "open_user_ms", "select_all_ms", "scroll_to_end_ms", "rows_in_dom"]
    print(f"\ndashboard budget, {out['users']:,} scored users in {ws}, {args.workspaces} workspaces ({args.runs} cold runs)")
    print("run  " + "  ".join(f"{c.removesuffix('_ms'):>14}" for c in cols))
    for i, r in enumerate(out["runs"], 1):
        print(f"{i:<4} " + "  ".join(f"{(r[c] or 0):>14.0f}" for c in cols))
    med = out["median"]
    print("med  " + "  ".join(f"{(med[c] or 0):>14.0f}" for c in cols))
    fmp = med["first_meaningful_paint_ms"]
    print(f"\nfirst meaningful paint {fmp:.0f} ms (budget {BUDGET_MS} ms): {'within' if fmp <= BUDGET_MS else 'OVER'}; "
          f"churn matrix of {out['users']:,} users interactive after {med['churn_matrix_ms']:.0f} ms, "
          f"sort {med['sort_ms']:.0f} ms, open a user {med['open_user_ms']:.0f} ms, "
          f"{med['rows_in_dom']:.0f} rows in the DOM (virtualised)")
    return 0 if fmp <= BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
