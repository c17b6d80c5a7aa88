"""The study report's cost side: each cell's cost keys (training, start-up, index and total FLOPs to be ready), how
the cost table is read, which unit the budget matches and how far apart methods' FLOPs ended up, and each trained
method's learning rate."""

from __future__ import annotations

from rag_pet.objectives import study_methods
from rag_pet.study.names import MAIN
from rag_pet.study.spec import RECIPE_MARK, StudyConfig

COST_COLUMNS = (
    ("trainable params", "trainable_params", "{:,.0f}"),
    ("train wall s", "train_steps_wall_seconds", "{:.0f}"),
    ("start-up s", "train_startup_seconds", "{:.0f}"),
    ("train tokens", "train_tokens", "{:,.0f}"),
    ("train FLOPs", "train_flops", "{:.2e}"),
    ("index FLOPs", "index_flops", "{:.2e}"),
    ("total FLOPs to be ready", "ready_flops", "{:.2e}"),
    ("retrieval FLOPs / 1k questions", "retrieval_flops_per_1k", "{:.2e}"),
    ("peak memory GiB", "peak_memory_gib", "{:.2f}"),
    ("answer p50 ms", "batch1_latency_p50_ms", "{:.0f}"),
    ("answer p95 ms", "batch1_latency_p95_ms", "{:.0f}"),
    ("first token p50 ms", "batch1_ttft_p50_ms", "{:.0f}"),
    ("per token p50 ms", "batch1_ms_per_token_p50", "{:.1f}"),
    ("retrieval p50 ms", "batch1_retrieval_p50_ms", "{:.1f}"),
    ("endpoint p50 ms", "endpoint_latency_p50_ms", "{:.0f}"),
    ("endpoint p95 ms", "endpoint_latency_p95_ms", "{:.0f}"),
)


def learning_rate(record: dict) -> float | None:
    """The peak learning rate the cell's own config trained at; None for a method that does not train."""
    method = study_methods().get(record["method"].partition(RECIPE_MARK)[0])
    if method is None or not method.trains:
        return None
    return ((record.get("config") or {}).get("trainer") or {}).get("lr")


def with_costs(record: dict, metrics: dict, first: dict | None) -> None:
    """A finished cell's cost keys: 0 for what it did not spend (training, an index), its training launch's
    start-up (the launch's wall time outside its steps), and the FLOPs to be ready to answer: its training, the
    index it reads and the training of the cell it started from (`first`: a main cell's pass over the documents)."""
    if "train_flops" not in metrics:  # a method that does not train spends nothing on it
        for key in ("train_wall_seconds", "train_steps_wall_seconds", "train_tokens", "train_flops"):
            metrics.setdefault(key, 0.0)
    launch, steps = metrics.get("train_wall_seconds"), metrics.get("train_steps_wall_seconds")
    if launch is not None and steps is not None and launch >= steps:  # not when it resumed an earlier launch's steps
        metrics["train_startup_seconds"] = launch - steps
    reads_index = record.get("index") is not None
    metrics["index_flops"] = record.get("index_flops") if reads_index else 0.0
    metrics["retrieval_flops_per_1k"] = record.get("retrieval_flops_per_1k") if reads_index else 0.0
    before = ((first or {}).get("metrics") or {}).get("train_flops", 0.0)
    if metrics["index_flops"] is not None:
        metrics["ready_flops"] = before + metrics["train_flops"] + metrics["index_flops"]


def cost_reading(study: StudyConfig) -> list[str]:
    """How the cost table is read: which figures are measured once per cell and which carry an interval."""
    seeds = len(study.seeds)
    spread = (
        f"± is the standard deviation over the {seeds} seeds"
        if seeds > 1
        else "with one seed they are single measurements without an interval (add seeds for a spread)"
    )
    return [
        "Trainable parameters, training tokens and FLOPs follow from the configuration and do not vary between runs. "
        f"Training wall time and peak memory are measured once per cell; {spread}. Latency medians carry a "
        "distribution-free 95 % interval over the timed questions in brackets (order statistics, scipy "
        "`quantile_test`); wall times depend on the machine and its load (see the closing section).",
        "",
        "*train wall s* runs from the first optimizer step to the last (checkpoint writes included); *start-up s* is "
        "the rest of the training launch (checks, Ray Train's worker group, building the model, copying the final "
        "checkpoint). *index FLOPs*: building the index a retrieving method reads, every passage of the corpus "
        "through the document tower once (2 FLOPs per parameter and token; 0 closed-book); *total FLOPs to be ready* "
        "= train + index, plus a closed-book method's pass over the documents before its questions "
        "(`knowledge_matched`): all a method spends to be ready to answer, what a FLOPs budget matches and the x "
        "axis of `accuracy_vs_cost.png`. *retrieval FLOPs / 1k questions* is what retrieval adds to answering, apart "
        "from generation: per question the query tower's forward pass over the questions' mean tokens (2 per "
        "parameter and token) plus an inner product with every indexed vector (2 per dimension; exact search, an "
        "upper bound for IVF or HNSW), times 1,000.",
    ]


def budget_markdown(study: StudyConfig, summaries: list[dict], tuning: list[dict]) -> list[str]:
    """Which unit the study matches, how far apart the trained methods' actual FLOPs to be ready ended up, and what
    tuning (`tuning`: the finished tuning records) spent besides."""
    budget = study.budget
    if budget.unit == "flops":
        matched = (
            f"Compute is matched: every trained method may spend {budget.amount:.3g} FLOPs to be ready to answer, "
            "all its training plus building the index it retrieves from. A retrieving method trains the whole steps "
            "its index leaves (under `knowledge_matched`, a closed-book method those its pass over the documents "
            "leaves)."
        )
    else:
        matched = (
            f"The study matches training {budget.unit} ({budget.amount:g} per trained method), not compute: a "
            "method's FLOPs follow from its steps, and a retrieving method also spends building its index "
            "(`study.budget.unit=flops` matches both)."
        )
    trained = {s["method"]: s["ready_flops"] for s in summaries if s.get("ready_flops") and trains(s["method"])}
    if trained:
        low, high = min(trained, key=trained.get), max(trained, key=trained.get)
        matched += (
            f" Actual FLOPs to be ready (all training + index) across trained methods: min {trained[low]:.2e} "
            f"({low}), max {trained[high]:.2e} ({high}), max/min {trained[high] / trained[low]:.2f}."
        )
    return ["", "## Budget", "", matched + _tuning_spend(study, tuning)]


def _tuning_spend(study: StudyConfig, tuning: list[dict]) -> str:
    """The sentence on what tuning spent outside the matched budget, or nothing without tuning."""
    spent = {record["method"]: record["train_flops"] for record in tuning if record.get("train_flops") is not None}
    if not study.tune.enabled or not spent:
        return ""
    low, high = min(spent, key=spent.get), max(spent, key=spent.get)
    trials = max(record["trials"] for record in tuning)
    return (
        f" Tuning comes before and outside this budget, {trials} trials per trained method: it "
        f"trained a further {spent[low]:.2e} ({low}) to {spent[high]:.2e} ({high}) FLOPs per method, "
        f"{sum(spent.values()):.2e} in all (see *Tuning*)."
    )


def trains(method: str) -> bool:
    found = study_methods().get(method)
    return found is not None and found.trains


def learning_rates_markdown(study: StudyConfig, rows: list[dict]) -> list[str]:
    """Each trained method's learning rate as its main cells' configs set it, a user's override included."""
    lines = []
    for method in study.methods:
        mains = [row for row in rows if row["method"] == method and row["kind"] == MAIN]
        rates = sorted({row["learning_rate"] for row in mains if row.get("learning_rate") is not None})
        if rates:
            lines.append(f"| {method} | {', '.join(f'{rate:g}' for rate in rates)} |")
    if not lines:
        return []
    reading = (
        "Peak AdamW learning rate of each trained method, read from its cells' configs: by default the method's own"
        " (`LEARNING_RATES` in rag_pet/objectives/closed_book.py, from each method's paper or peft's examples);"
        " `study.overrides` and `study.method_overrides` set others."
    )
    return ["", "## Learning rates", "", reading, "", "| method | learning rate |", "| --- | --- |", *lines]
