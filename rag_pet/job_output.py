"""Where a submitted job writes its results: the overrides that put its run directory (a study's directory) and its
index store under the submission's `output`, a path every node of the cluster sees, named after the submission id.
Ray unpacks a job's working_dir in its temporary directory and garbage-collects it, so nothing may stay there."""

from __future__ import annotations

import os
import re
from pathlib import Path

from rag_pet.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
EPHEMERAL = "ephemeral"
OUTPUT_ALLOWED = (
    "an absolute path every node of the cluster sees, e.g. a shared filesystem (--output /shared/rag_pet, or output:"
    " in conf/submit.yaml); or --ephemeral for results lost with the job's temporary working_dir"
)


def check_output(output: str | None) -> str | None:
    """The absolute output directory, or None for `ephemeral`; one line for a missing, relative or URI output."""
    if output == EPHEMERAL:
        return None
    if not output:
        raise ConfigError("output", output, OUTPUT_ALLOWED)
    if "://" in output:
        raise ConfigError(
            "output",
            output,
            "a shared directory path: run directories are written as files, so mount the bucket on every node"
            " (mountpoint-s3, gcsfuse) and give its mount point; trainer.storage_path=s3://... sends checkpoints there",
        )
    if not os.path.isabs(output):
        raise ConfigError(
            "output", output, f"an absolute path (a relative one means nothing on the cluster); {OUTPUT_ALLOWED}"
        )
    return os.path.normpath(output)


def output_overrides(
    job: str, overrides: list[str], output: str | None, submission_id: str, config_dir: Path = CONFIG_DIR
) -> tuple[list[str], str | None]:
    """The job's overrides with those that put its run directory under `<output>/<job>/<submission_id>` (a study's
    under `<output>/studies/<name>`, where submitting it again resumes it) and its index store under
    `<output>/indexes` (checkpoints follow the run directory); and that run directory, None for an ephemeral job.
    A run directory or store the user sets stays theirs, but must be absolute."""
    root = check_output(output)
    if root is None:
        return list(overrides), None
    given = {_key(override): override.partition("=")[2].strip("'\"") for override in overrides}
    for key in ("hydra.run.dir", "run_dir", "study_dir", "index.storage_path", "trainer.storage_path"):
        value = given.get(key, "")
        if key in given and value not in ("", "null") and "://" not in value and not os.path.isabs(value):
            raise ConfigError(
                key, value, "an absolute path every node sees (a relative one lands in the job's temporary working_dir)"
            )
    indexes = f"index.storage_path={hydra_value(os.path.join(root, 'indexes'))}"
    if job == "compare":
        name, study_overrides = _study(overrides, config_dir)
        results = given.get("study_dir") or os.path.join(root, "studies", name)
        extra = [] if "study_dir" in given else [f"study_dir={hydra_value(results)}"]
        if any(item.startswith("index.storage_path=") for item in study_overrides):
            return [*overrides, *extra], results
        kept = [override for override in overrides if _key(override) != "study.overrides"]
        listed = ",".join(quoted(item) for item in [*study_overrides, indexes])
        return [*kept, *extra, f"study.overrides=[{listed}]"], results
    own = next((given[key] for key in ("run_dir", "hydra.run.dir") if key in given), None)
    results = own or os.path.join(root, job, submission_id)
    extra = [] if own else [f"hydra.run.dir={hydra_value(results)}"]
    return [*overrides, *extra, *([] if "index.storage_path" in given else [indexes])], results


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


def _study(overrides: list[str], config_dir: Path) -> tuple[str, list[str]]:
    """The study's name and its `study.overrides` (unresolved), composed as `jobs.compare` will compose them."""
    from omegaconf import OmegaConf

    from rag_pet.config.compose import compose
    from rag_pet.study import register_study_configs

    register_study_configs()
    cfg = compose(config_dir, list(overrides), "compare")
    return str(cfg.study.name), [str(item) for item in OmegaConf.to_container(cfg.study.overrides, resolve=False)]


def hydra_value(text: str) -> str:
    """`text` as a Hydra override value: as is when plain, else quoted."""
    return text if re.fullmatch(r"[\w/.\-+@%]+", text) else quoted(text)


def quoted(text: str) -> str:
    """`text` in Hydra's single quotes: quotes escaped, and backslashes doubled where they precede one or the end."""
    escaped = re.sub(r"(\\*)('|$)", lambda m: m.group(1) * 2 + ("\\'" if m.group(2) else ""), text)
    return f"'{escaped}'"
