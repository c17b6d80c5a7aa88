"""What a study's tuning left (one record per tuned method, `<study_dir>/tune/<method>/tuning.json`) and the
report's *Tuning* section: the space, the trials, the values chosen, the best dev score and what tuning cost."""

from __future__ import annotations

from rag_pet.config import dimensions
from rag_pet.objectives import study_methods
from rag_pet.study.spec import StudyConfig
from rag_pet.study.tune_space import LR_KEY, TuneConfig


def tuning_markdown(study: StudyConfig, records: list[dict]) -> list[str]:
    """The *Tuning* section: how each trained method's hyperparameters were chosen, and at what cost."""
    tune = study.tune
    if not tune.enabled:
        return [
            "",
            "## Tuning",
            "",
            "Not tuned (`study.tune.enabled=false`): every trained method ran at its default learning rate (*Learning"
            " rates* above) and its experiment's other hyperparameters.",
        ]
    best = "lowest" if tune.mode == "min" else "highest"
    reading = (
        f"Before the main cells, a Ray Tune sweep ({_trials_text(tune)}; {tune.search} search, "
        f"{tune.scheduler.get('type', 'asha')} scheduling) chose each trained method's hyperparameters on its seed "
        f"{study.seeds[0]} main cell. Every trial trained at that cell's budget on its training questions, from the "
        "base weights (a closed-book method's pass over the documents is no part of a trial), and was scored by "
        f"`{tune.metric}` on {study.questions} questions of the `dev` split: {tune.dev_fraction:.0%} of the training "
        "articles' questions, held out of every cell's training and disjoint from the *unseen*, *seen*, train-sample "
        f"and late questions. The values of the trial with the {best} `{tune.metric}` were then set in every cell of "
        "the method (its overrides; *Learning rates* lists the rates the cells trained at). Tuning is spent on top of "
        "the study budget: as many trials for every method, each at the budget of the method's main cell."
    )
    parts = ["", "## Tuning", "", reading]
    if records:
        header = f"| method | space | trials | chosen | dev {tune.metric} (best) | steps | wall s | train FLOPs |"
        parts += ["", header, "|" + " --- |" * 8, *(_row(record) for record in records), "", _total(records)]
    trained = [name for name in study.methods if (found := study_methods().get(name)) and found.trains]
    untuned = [name for name in trained if name not in {record["method"] for record in records}]
    if untuned:
        parts += ["", f"No finished tuning for {', '.join(untuned)}: their cells ran at their default values."]
    fixed = [name for name in study.methods if name not in trained]
    if fixed:
        parts += ["", f"Not tuned, as they do not train: {', '.join(fixed)}."]
    return parts


def _trials_text(tune: TuneConfig) -> str:
    """How the trials are made up: the learning-rate grid (times the rest of the space's draws) or the draws."""
    if tune.lr_factor is None or LR_KEY in dimensions(tune.space) or tune.lr_points is None:
        return f"{tune.num_samples} draw(s) of the space, every value of a grid dimension in each"
    low, high = tune.lr_factor
    rates = f"{tune.lr_points} learning rates log-spaced from {low:g}x to {high:g}x the method's own"
    return rates if not tune.space else f"{rates}, each with {tune.num_samples} draws of the rest of the space"


def _row(record: dict) -> str:
    chosen = ", ".join(
        f"{key}={_number(value)}{_at_end(record['space'], key, value)}" for key, value in record["chosen"].items()
    )
    flops = f"{record['train_flops']:.2e}" if record.get("train_flops") is not None else "-"
    return (
        f"| {record['method']} | {space_text(record['space'])} | {record['trials']} × {record['steps_per_trial']} steps"
        f" | {chosen} | {_number(record['best_metric'])} | {record['train_steps']:,} | {record['wall_seconds']:.0f}"
        f" | {flops} |"
    )


def _total(records: list[dict]) -> str:
    trials = sum(record["trials"] for record in records)
    steps = sum(record["train_steps"] for record in records)
    seconds = sum(record["wall_seconds"] for record in records)
    flops = [record.get("train_flops") for record in records]
    text = f"In all: {trials} trials, {steps:,} optimizer steps, {seconds:.0f} s of wall time"
    if all(value is not None for value in flops):
        text += f", {sum(flops):.2e} training FLOPs"
    return text + "."


def _at_end(space: dict, key: str, value: object) -> str:
    """' (upper end)' / ' (lower end)' when a chosen value is the largest or smallest the space allowed: the best
    may lie beyond what was tried."""
    node = dimensions(space).get(key, {})
    values = node.get("values") or [node.get("lower"), node.get("upper")]
    numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if len(numbers) < 2 or not isinstance(value, (int, float)):
        return ""
    if value >= max(numbers) * (1 - 1e-9):
        return " (upper end)"
    if value <= min(numbers) * (1 + 1e-9):
        return " (lower end)"
    return ""


def space_text(space: dict) -> str:
    """A search space in a few words: `trainer.lr log-uniform 5e-05 to 0.005; peft.r one of 4, 8`."""
    described = []
    for key, node in dimensions(space).items():
        if "values" in node:
            described.append(f"{key} one of {', '.join(_number(v) for v in node['values'])}")
        else:
            kind = node["type"].replace("loguniform", "log-uniform")
            described.append(f"{key} {kind} {_number(node['lower'])} to {_number(node['upper'])}")
    return "; ".join(described)


def _number(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
