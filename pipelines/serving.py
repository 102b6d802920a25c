"""Which stored model versions a nightly scoring run serves, by A/B arm, for any prediction kind.

Training is split from scoring (``pipelines.retrain``): a retrain registers a version with its scoring artifact
(an MLflow artifact folder of the training run, no pickles), and the nightly run scores with it. Every kind
that is split uses the same plan:

* the champion arm is served by ``registry.serving_version`` (the champion, or a newer version a retrain
  registered with a ``promote`` decision; publishing its rows moves the alias, ``registry.apply_published``);
* with ``ab_challenger_share`` > 0 and a distinct ``challenger`` alias, the workspaces of the challenger arm
  (``core.arms.workspace_arm``) are scored with the challenger version;
* no champion, an unreadable artifact, or a version trained on data through the run date or later means the
  night trains inline, and the note says why (a re-run of the training date trains again and, on the same
  data, gets the same version and rows).

``version_artifact_dir`` downloads a version's artifact folder once per run into the data folder (shared by the
shards of a run); the kind reads it with its own loader.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Callable, Generic, TypeVar

import pandas as pd

from core.arms import CHALLENGER_ARM, CHAMPION_ARM, workspace_arm
from core.settings import Settings

T = TypeVar("T")
TRAINED_THROUGH_TAG = "pae_trained_through"


def version_artifact_dir(settings: Settings, model_name: str, version: str, artifact_dir: str) -> Path:
    """A local copy of folder ``artifact_dir`` of the training run of ``model_name`` version ``version``."""
    from pipelines.registry import configure

    mlflow = configure(settings)
    from mlflow.tracking import MlflowClient

    mv = MlflowClient().get_model_version(model_name, str(version))
    if not mv.run_id:
        raise ValueError(f"{model_name} version {version} has no training run")
    cache = Path(settings.data_dir) / "scoring_artifacts" / mv.run_id
    if not (cache / artifact_dir).exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".download-"))
        mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{mv.run_id}/{artifact_dir}", dst_path=str(tmp))
        try:
            (tmp / artifact_dir).rename(cache / artifact_dir)
        except OSError:  # another shard put it there first
            pass
        shutil.rmtree(tmp, ignore_errors=True)
    return cache / artifact_dir


def version_by_alias(settings: Settings, model_name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the model or alias does not exist yet."""
    from pipelines.registry import configure

    configure(settings)
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    try:
        return str(MlflowClient().get_model_version_by_alias(model_name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def tag_trained_through(settings: Settings, model_name: str, version: str, as_of: date) -> None:
    """Record on the version the last day of data it was trained on."""
    from pipelines.registry import configure

    configure(settings)
    from mlflow.tracking import MlflowClient

    MlflowClient().set_model_version_tag(model_name, str(version), TRAINED_THROUGH_TAG, as_of.isoformat())


@dataclass
class StoredArtifact:
    """A model version's scoring artifact folder (a kind's subclass knows its files), read from a local folder."""

    version: str
    folder: Path
    config: dict

    @property
    def n_shards(self) -> int:
        return int(self.config["n_shards"])

    @property
    def trained_through(self) -> date:
        return date.fromisoformat(self.config["trained_through"])


def read_artifact_config(version: str, folder: Path, artifact_dir: str, formats: tuple[int, ...],
                         required: set[str]) -> dict:
    """``config.json`` of an artifact folder, checked (format, keys); ValueError says what is wrong."""
    path = Path(folder) / "config.json"
    if not path.exists():
        raise ValueError(f"no {artifact_dir}/config.json in the artifact of version {version}")
    config = json.loads(path.read_text())
    if config.get("format") not in formats:
        raise ValueError(f"version {version}: artifact format {config.get('format')!r}, expected one of {formats}")
    missing = (set(required) | {"n_shards", "trained_through"}) - set(config)
    if missing:
        raise ValueError(f"version {version}: artifact config lacks {sorted(missing)}")
    return config


def gather_shard_states(root: Path, refs: list[dict], artifact_dir: str, config: dict) -> Path:
    """Copy each trained shard's ``state`` folder into ``root/<artifact_dir>/shard=<k>`` and write ``config.json``;
    returns the folder (what the training run logs to MLflow)."""
    folder = root / artifact_dir
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for r in refs:
        src = Path(r["path"]) / "state"
        if src.exists():
            shutil.copytree(src, folder / f"shard={r['shard']}")
    (folder / "config.json").write_text(json.dumps(config, default=str))
    return folder


@dataclass
class ServingPlan(Generic[T]):
    """The loaded models to score with, by arm (empty: train inline), and why."""

    models: dict[str, T] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    note: str = ""

    @property
    def train_inline(self) -> bool:
        return not self.models

    def arms(self, workspace_ids: pd.Series, settings: Settings) -> pd.Series:
        """The arm serving each workspace (source ids or UUIDs; hashed on the UUID, as the publisher labels the
        snapshots); all champion unless a challenger is in the plan."""
        ids = pd.Series(workspace_ids).astype(str)
        if CHALLENGER_ARM not in self.models or settings.ab_challenger_share <= 0:
            return pd.Series(CHAMPION_ARM, index=ids.index)
        return ids.map(lambda w: workspace_arm(w, settings.ab_challenger_share, settings.ab_salt))


def serving_plan(settings: Settings, engine, model_name: str, as_of: date, load: Callable[[str], T],
                 trained_through: Callable[[T], date]) -> ServingPlan[T]:
    """The versions a scoring run of ``as_of`` serves; ``load(version)`` reads one (any exception: unusable)."""
    from pipelines.registry import CHALLENGER, serving_version

    champion = serving_version(engine, settings, model_name)
    if champion is None:
        return ServingPlan(note="no champion yet: trained inline")
    try:
        model = load(champion)
    except Exception as exc:  # noqa: BLE001 - any unreadable artifact means: train tonight, and say why
        return ServingPlan(note=f"champion v{champion} artifact unreadable ({type(exc).__name__}: {exc}): "
                                "trained inline")
    through = trained_through(model)
    if through > as_of:
        return ServingPlan(note=f"champion v{champion} was trained on data through {through}, after {as_of}: "
                                "trained inline")
    if through == as_of:
        return ServingPlan(note=f"champion v{champion} was trained through {as_of} itself: trained inline again "
                                "(same version)")
    plan = ServingPlan(models={CHAMPION_ARM: model}, versions={CHAMPION_ARM: str(champion)},
                       note=f"scored with champion v{champion} (trained through {through})")
    if settings.ab_challenger_share > 0:
        challenger = version_by_alias(settings, model_name, CHALLENGER)
        if challenger is None or challenger == str(champion):
            plan.note += "; A/B on but no distinct challenger: every workspace on the champion"
            return plan
        try:
            ch = load(challenger)
            if trained_through(ch) > as_of:
                raise ValueError(f"trained through {trained_through(ch)}, after {as_of}")
            plan.models[CHALLENGER_ARM], plan.versions[CHALLENGER_ARM] = ch, str(challenger)
            plan.note += f"; challenger v{challenger} for {settings.ab_challenger_share:.0%} of workspaces"
        except Exception as exc:  # noqa: BLE001
            plan.note += f"; challenger v{challenger} not usable ({exc}): every workspace on the champion"
    return plan


def scored_shards(kind: str, run_date: date, refs: list[dict]) -> bool:
    """True when the shards of a night scored with stored versions, False when they trained inline; a
    RuntimeError when they disagree (the served version changed during the run)."""
    modes = {json.dumps([r.get("mode", "trained"), r.get("versions")], sort_keys=True) for r in refs}
    if len(modes) > 1:
        raise RuntimeError(f"{kind} shards of {run_date} disagree on how they scored ({sorted(modes)}): "
                           "the served version changed during the run; re-run the date")
    return refs[0].get("mode") == "scored"


def workspaces_by_arm(refs: list[dict]) -> dict[str, int]:
    """The shards' workspaces per A/B arm, summed."""
    out: dict[str, int] = {}
    for r in refs:
        for arm, n in r.get("workspaces_by_arm", {}).items():
            out[arm] = out.get(arm, 0) + int(n)
    return out
