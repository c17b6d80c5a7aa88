import re

import pytest

from tests.conftest import CONF_DIR, compose_config

EXPERIMENTS = sorted(path.stem for path in (CONF_DIR / "experiment").glob("*.yaml"))
GROUP_OPTIONS = [
    (group.name, option.stem)
    for group in sorted(CONF_DIR.iterdir())
    if group.is_dir() and group.name not in ("experiment", "debug", "study", "sweep")  # tests/study, tests/sweep
    for option in sorted(group.glob("*.yaml"))
]
REQUIRED = {
    ("data", "jsonl"): ["data.path=/tmp/qa"],
    ("model", "hf_path"): ["model.path=/tmp/model"],
    ("retriever", "hf_path"): ["retriever.path=/tmp/encoder"],
    ("corpus", "beir"): ["corpus.path=/tmp/beir"],
    ("data", "documents"): ["data.path=/tmp/docs"],
    ("corpus", "documents"): ["data=documents", "data.path=/tmp/docs"],  # the corpus of the data's folder
}


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(experiment):
    config = compose_config([f"experiment={experiment}"])
    assert config.experiment_name == experiment


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_with_debug_tiny(experiment):
    config = compose_config([f"experiment={experiment}", "debug=tiny"])
    assert config.model.source == "tiny"
    assert config.trainer.max_steps == 4


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_group_option_composes(group, option):
    compose_config([f"{group}={option}", *REQUIRED.get((group, option), [])])


def test_quickstart_is_the_run_the_readme_describes():
    """The README's quickstart line ("zero-shot, then N LoRA steps"; `trainer.num_workers=2` for 2 workers) and
    the experiment file must not drift apart."""
    readme = (CONF_DIR.parent / "README.md").read_text()
    described = re.search(r"jobs\.train experiment=quickstart +# zero-shot, then (\d+) LoRA steps", readme)
    assert described, "README.md no longer describes `python -m jobs.train experiment=quickstart`"
    config = compose_config(["experiment=quickstart"])
    assert config.eval.before_training and config.eval.after_training  # zero-shot, then trained
    assert config.peft.method == "lora" and config.trainer.max_steps == int(described[1])
    assert config.trainer.num_workers == 1
