"""``pae goal set|list|remove``: growth goals a workspace sets (``pipelines.growth.goals``)."""
from __future__ import annotations

import argparse
import json
import sys
from datetime import date


def _engine():
    from core.db import get_engine, migrate
    from core.settings import get_settings

    engine = get_engine(get_settings())
    migrate(engine)
    return engine


def cmd_goal(args: argparse.Namespace) -> int:
    import pandas as pd

    from pipelines.growth.goals import GoalError, list_goals, remove_goal, set_goal

    engine = _engine()
    try:
        if args.goal_command == "set":
            goal = set_goal(engine, args.workspace, args.metric, args.target, args.due, args.note)
            verb = "created" if goal.pop("created") else "updated"
            print(f"{verb} goal {goal['goal_id']}: {goal['target_metric']} >= {goal['target_value']:g} by "
                  f"{goal['due_date']} for {goal['workspace_external_id']} (projected by the next growth run)",
                  file=sys.stderr)
            print(json.dumps(goal, default=str))
        elif args.goal_command == "list":
            goals = list_goals(engine, args.workspace)
            for row in goals.to_dict("records"):
                print(json.dumps({k: (None if pd.isna(v) else v) for k, v in row.items()}, default=str))
            if goals.empty:
                print("no goals", file=sys.stderr)
        else:
            if not remove_goal(engine, args.goal_id):
                print(f"error: no goal has id {args.goal_id}", file=sys.stderr)
                return 2
            print(f"removed goal {args.goal_id}")
    except GoalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_goal_parsers(sub: argparse._SubParsersAction) -> None:
    """Register ``goal set|list|remove`` on the ``pae`` parser's subparsers."""
    goal = sub.add_parser("goal", help="growth goals: a target DAU/WAU/MAU by a due date, projected every night")
    gs = goal.add_subparsers(dest="goal_command", required=True)
    s = gs.add_parser("set", help="set (or change) a workspace's goal for a metric and due date")
    s.add_argument("--workspace", required=True, help="workspace UUID or external id")
    s.add_argument("--metric", required=True, choices=["dau", "wau", "mau"])
    s.add_argument("--target", required=True, type=float, help="users to reach")
    s.add_argument("--due", required=True, type=date.fromisoformat, help="due date, YYYY-MM-DD")
    s.add_argument("--note", default=None)
    ls = gs.add_parser("list", help="goals with their latest projection (JSON lines)")
    ls.add_argument("--workspace", default=None, help="only this workspace")
    rm = gs.add_parser("remove", help="remove a goal by id (see `pae goal list`)")
    rm.add_argument("goal_id")
    goal.set_defaults(func=cmd_goal)
