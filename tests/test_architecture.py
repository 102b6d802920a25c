"""The layout's rules that import-linter does not check (it runs in `make test`, see `.importlinter`)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.settings import REPO_ROOT

MAX_LINES = 600
PACKAGES = ("core", "pipelines", "models", "services")


def test_no_module_over_600_lines():
    long = {str(p.relative_to(REPO_ROOT)): n for pkg in PACKAGES for p in (REPO_ROOT / pkg).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"split these by job (max {MAX_LINES} lines): {long}"


def test_layer_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "0 broken" in out.stdout


def test_every_kind_is_importable_and_declares_its_features():
    from pipelines.features.sets import FEATURE_SETS
    from pipelines.kinds import get_kind, kind_names

    for name in kind_names():
        kind = get_kind(name)
        assert kind.name == name
        assert kind.feature_sets and set(kind.feature_sets) <= set(FEATURE_SETS)


def test_api_does_not_load_the_pipeline():
    """The API process imports only core and its own modules (no pipelines, models, MLflow or Airflow)."""
    code = ("import sys, services.api.main; "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pipelines', 'models', 'mlflow', 'airflow', 'xgboost', 'great_expectations'})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_load_events_command_does_not_load_the_api():
    code = ("import sys; from pipelines.cli import build_parser; build_parser(); "
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & {'services', 'fastapi', 'uvicorn'})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
