"""The metric names a run reports, in one place: while training, its cost, and what each evaluation measures."""

# What the train loop reports at every `trainer.log_every` steps that the trained row reports too (`loss`: the last
# report's training loss).
TRAINING_METRICS = ("loss", "tokens_per_s", "train_seconds", "peak_memory_bytes")
COST_METRICS = ("trainable_params", "train_steps", "train_wall_seconds", "train_tokens", "train_flops", "mfu")
# `eval_seconds`: answering the main split; `evaluation_seconds`: every split, the latency and forgetting
# measurements too (what a study counts as evaluation, beside training's `train_seconds`).
QA_METRICS = ("exact_match", "f1", "answer_nll", "eval_seconds", "seconds_per_question", "evaluation_seconds")
# Reported for every split evaluated (`<metric>@<split>` for `eval.extra_splits`); recall where passages are read.
SPLIT_METRICS = ("exact_match", "f1", "answer_nll")
RECALL_METRICS = ("retrieval_recall@1", "retrieval_recall@5")
FORGETTING_METRICS = ("general_text_loss", "forgetting")
BATCH1_LATENCY_METRICS = (
    "batch1_latency_p50_ms",
    "batch1_latency_p95_ms",
    "batch1_ttft_p50_ms",
    "batch1_ms_per_token_p50",
)
BATCH1_RETRIEVAL_METRICS = ("batch1_retrieval_p50_ms",)
RETRIEVER_METRICS = ("ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@20", "recall@100")
