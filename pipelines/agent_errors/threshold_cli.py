"""``pae agent-threshold set|clear|list``: per-agent threshold overrides for error-rate alerts.

Registered on the main parser by ``pipelines.cli``; imports stay inside the command (a light ``pae --help``).
"""
from __future__ import annotations

import argparse
import json
import sys


def cmd_agent_threshold(args: argparse.Namespace) -> int:
    from core.db import get_engine, migrate
    from core.settings import get_settings
    from pipelines.agent_errors.thresholds import UnknownAgentError, clear_threshold, list_thresholds, set_threshold

    engine = get_engine(get_settings())
    migrate(engine)
    try:
        if args.threshold_command == "set":
            print(json.dumps(set_threshold(engine, args.workspace, args.agent, args.rate, args.multiplier, args.note)))
        elif args.threshold_command == "clear":
            removed = clear_threshold(engine, args.workspace, args.agent)
            print("override removed; the default threshold applies" if removed else "no override to remove")
        else:
            rows = list_thresholds(engine)
            if rows.empty:
                print("no overrides: every agent uses the default threshold")
            for r in rows.itertuples():
                rate = r.threshold_rate
                what = f"rate {rate:g}" if rate is not None and rate == rate else f"multiplier {r.multiplier:g}"
                print(f"{r.workspace_id}  {r.agent_id}  {what}  {r.note or ''}")
    except (UnknownAgentError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def add_agent_threshold_parsers(sub: argparse._SubParsersAction) -> None:
    at = sub.add_parser("agent-threshold", help="per-agent error-rate thresholds for escalation alerts")
    cmds = at.add_subparsers(dest="threshold_command", required=True)
    s = cmds.add_parser("set", help="override an agent's threshold: an error rate, or a multiplier of its baseline")
    s.add_argument("--workspace", required=True, help="workspace UUID or external id")
    s.add_argument("--agent", required=True, help="agent UUID or external id")
    what = s.add_mutually_exclusive_group(required=True)
    what.add_argument("--rate", type=float, help="absolute error rate, e.g. 0.08 for 8%%")
    what.add_argument("--multiplier", type=float, help="times the agent's baseline rate (default setting: 3)")
    s.add_argument("--note", default=None, help="why (shown by list)")
    c = cmds.add_parser("clear", help="remove an agent's override (back to the default threshold)")
    c.add_argument("--workspace", required=True)
    c.add_argument("--agent", required=True)
    cmds.add_parser("list", help="list the overrides")
    at.set_defaults(func=cmd_agent_threshold)
