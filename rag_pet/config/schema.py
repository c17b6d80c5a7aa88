"""Typed configuration schemas: what every Hydra config composes into, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_pet.config.articles import (
    ARTICLE_SOURCES,
    FICTIONAL_ENTITIES,
    FICTIONAL_SEED,
    check_fictional_entities,
    documents_folder,
)
from rag_pet.config.checks import one_of, positive
from rag_pet.config.retrieval import CorpusConfig, IndexConfig, IndexSource, RagConfig, RetrieverConfig
from rag_pet.config.serve import ServeConfig
from rag_pet.config.sweep import SweepConfig
from rag_pet.errors import ConfigError

DATASETS = (*ARTICLE_SOURCES, "nq_open", "jsonl")
SPLITS = ("train", "validation_seen", "validation", "test", "test_train", "dev")
TRAIN_ON = ("questions", "passages", "corpus")
MIXED_QUESTIONS = ("none", "train", "facts")
MAX_PHRASINGS = 5  # rag_pet.data.fictional_text.PHRASINGS
TEMPLATES = ("closed_book",)
MODEL_SOURCES = ("tiny", "smollm2", "path")
TINY_ARCHS = ("llama", "t5")
DTYPES = ("float32", "bfloat16", "float16")
PEFT_METHODS = ("lora", "dora", "adalora", "ia3", "loha", "lokr", "prefix", "prompt", "ptuning", "full", "frozen")
PEFT_METHODS_TRAINABLE = tuple(m for m in PEFT_METHODS if m != "frozen")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
EVAL_PRECISIONS = ("auto", "fp32", "bf16")
ATTENTION_IMPLEMENTATIONS = ("auto", "eager", "sdpa", "flash_attention_2")
ZERO_STAGES = (0, 1, 2, 3)
EVAL_TASKS = ("qa", "retrieval")
RETRIEVAL_METHODS = ("dense", "bm25", "hybrid")
LAUNCHERS = ("ray", "local")
WANDB_MODES = ("offline", "online", "disabled")
EVAL_RUNNERS = ("in_process", "ray_data", "endpoint")
LATENCY_VIA = ("in_process", "endpoint")


@dataclass
class DataConfig:
    """Which QA task to train and evaluate on, how it is split, and how prompts are built.

    Article datasets (`squad`; `fictional`, `fictional_entities` invented entities generated from
    `fictional_seed`; `documents`, the user's folder at `path`, see rag_pet/data/documents.py) split by article:
    `train`, `validation` and `test` articles (a documents folder's `splits.json` may name the last two), with
    `seen_holdout` of the train articles' questions held out as `validation_seen` and `dev_fraction` of them as
    `dev` (for choosing hyperparameters; 0: no dev split, the other splits as without it); `test_train_fraction` of
    the test articles' questions move to `test_train` (question-answer pairs about new articles to train on, the
    rest of `test` to evaluate). With `train_on=passages` closed-book training reads the paragraphs of the
    `train_split` articles as plain text (language modelling, each cut to `max_text_tokens`) instead of
    question-answer pairs; with `train_on=corpus` every passage of the `corpus` section, the passages an index over
    it holds.

    Knowledge injection (Allen-Zhu & Li 2023, arXiv 2309.14316; Mecklenburg et al. 2024, arXiv 2404.00213), for the
    generated fictional set (and a documents folder that brings its own, rag_pet/data/document_injection.py):
    `heldout_phrasings` asks the evaluation splits' questions in phrasings no training question uses. Text training
    reads each paragraph in `phrasings` different phrasings of its facts, with its sentences shuffled
    (`permute_sentences`) and the entity named in full in every sentence (`full_names`; fictional only); and
    (`mixed_questions`) question-answer pairs interleaved with the texts in the same run (in batches of like
    length that alternate through every pass): the `train` split's questions, or `facts`, the fact questions of
    every text's article in training phrasing (the first `max_mixed_questions` of them when set).
    """

    name: str = "squad"
    path: str | None = None
    fictional_seed: int = FICTIONAL_SEED
    fictional_entities: int = FICTIONAL_ENTITIES
    split_seed: int = 13
    validation_articles: int = 5
    test_articles: int = 5
    seen_holdout: float = 0.1
    test_train_fraction: float = 0.0
    dev_fraction: float = 0.0
    train_split: str = "train"
    eval_split: str = "validation"
    train_on: str = "questions"
    max_train_examples: int | None = None
    max_eval_examples: int | None = 200
    template: str = "closed_book"
    chat_template: bool = False
    max_prompt_tokens: int = 64
    max_answer_tokens: int = 16
    max_text_tokens: int = 256
    heldout_phrasings: bool = False
    phrasings: int = 1
    permute_sentences: bool = False
    full_names: bool = False
    mixed_questions: str = "none"
    max_mixed_questions: int | None = None

    def __post_init__(self) -> None:
        one_of("data.name", self.name, DATASETS)
        if self.name == "jsonl" and not self.path:
            raise ConfigError("data.path", self.path, "a directory holding train.jsonl and validation.jsonl")
        if self.name == "documents":
            self.path = documents_folder("data.path", self.path)
        check_fictional_entities("data.fictional_entities", self.fictional_entities)
        one_of("data.train_split", self.train_split, SPLITS)
        one_of("data.eval_split", self.eval_split, SPLITS)
        one_of("data.template", self.template, TEMPLATES)
        positive("data.validation_articles", self.validation_articles)
        positive("data.test_articles", self.test_articles)
        if not 0.0 <= self.seen_holdout < 1.0:
            raise ConfigError("data.seen_holdout", self.seen_holdout, "a fraction in [0, 1)")
        if not 0.0 <= self.test_train_fraction < 1.0:
            raise ConfigError("data.test_train_fraction", self.test_train_fraction, "a fraction in [0, 1)")
        if not 0.0 <= self.dev_fraction < 1.0 - self.seen_holdout:
            raise ConfigError("data.dev_fraction", self.dev_fraction, f"a fraction in [0, {1 - self.seen_holdout:g})")
        one_of("data.train_on", self.train_on, TRAIN_ON)
        if self.train_on == "passages" and self.name not in ARTICLE_SOURCES:
            raise ConfigError(
                "data.train_on", "passages", f"questions unless data.name is one of {', '.join(ARTICLE_SOURCES)}"
            )
        for name in ("max_train_examples", "max_eval_examples", "max_mixed_questions"):
            value = getattr(self, name)
            if value is not None:
                positive(f"data.{name}", value)
        positive("data.max_prompt_tokens", self.max_prompt_tokens)
        positive("data.max_answer_tokens", self.max_answer_tokens)
        positive("data.max_text_tokens", self.max_text_tokens)
        self._check_injection()

    def _check_injection(self) -> None:
        if self.heldout_phrasings and self.name not in ("fictional", "documents"):
            raise ConfigError(
                "data.heldout_phrasings", True, "false unless data.name is fictional or documents (question_heldout)"
            )
        if not 1 <= self.phrasings <= MAX_PHRASINGS:
            raise ConfigError("data.phrasings", self.phrasings, f"a number of phrasings from 1 to {MAX_PHRASINGS}")
        if self.phrasings > 1 and self.name not in ("fictional", "documents"):
            raise ConfigError("data.phrasings", self.phrasings, "1 unless data=fictional or documents (paraphrases)")
        for name in ("permute_sentences", "full_names"):
            if getattr(self, name) and self.name != "fictional":
                raise ConfigError(f"data.{name}", True, "false unless data=fictional (it writes its own sentences)")
        one_of("data.mixed_questions", self.mixed_questions, MIXED_QUESTIONS)
        if self.mixed_questions == "facts" and self.name not in ("fictional", "documents"):
            raise ConfigError(
                "data.mixed_questions", "facts", "none or train unless data=fictional or documents (fact questions)"
            )
        if self.mixed_questions != "none" and self.train_on == "questions":
            raise ConfigError(
                "data.mixed_questions", self.mixed_questions, "none unless data.train_on is passages or corpus"
            )


@dataclass
class ModelConfig:
    """The generator: a tiny model built from a config, the bundled SmolLM2, or a local HF path."""

    source: str = "smollm2"
    path: str | None = None
    arch: str = "llama"
    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    init_seed: int = 0
    dtype: str = "float32"
    attn_implementation: str = "auto"

    def __post_init__(self) -> None:
        one_of("model.source", self.source, MODEL_SOURCES)
        if self.source == "path" and not self.path:
            raise ConfigError("model.path", self.path, "a local directory with a transformers model")
        if self.source == "tiny":
            one_of("model.arch", self.arch, TINY_ARCHS)
            for name in ("hidden_size", "num_layers", "num_heads"):
                positive(f"model.{name}", getattr(self, name))
            if self.hidden_size % self.num_heads:
                raise ConfigError("model.hidden_size", self.hidden_size, "a multiple of model.num_heads")
        one_of("model.dtype", self.dtype, DTYPES)
        one_of("model.attn_implementation", self.attn_implementation, ATTENTION_IMPLEMENTATIONS)


@dataclass
class PeftConfig:
    """How the generator is adapted: a `peft` method, full fine-tuning, or frozen (zero-shot)."""

    method: str = "lora"
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None
    num_virtual_tokens: int = 20

    def __post_init__(self) -> None:
        one_of("peft.method", self.method, PEFT_METHODS)
        positive("peft.r", self.r)
        positive("peft.alpha", self.alpha)
        positive("peft.num_virtual_tokens", self.num_virtual_tokens)
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("peft.dropout", self.dropout, "a probability in [0, 1)")


@dataclass
class TrainerConfig:
    """Optimisation and distribution: workers, device, steps, checkpoints and failure handling.

    `init_from` starts closed-book training from the weights an earlier run trained (its `final_checkpoint/model`:
    an adapter of the same peft method, or a fully fine-tuned model) instead of the pretrained model."""

    launcher: str = "ray"
    num_workers: int = 1
    use_gpu: bool = False
    cpus_per_worker: float | None = None
    precision: str = "auto"
    max_steps: int = 100
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float = 1.0
    grad_accum_steps: int = 1
    log_every: int = 10
    checkpoint_every: int = 50
    num_to_keep: int = 2
    max_failures: int = 2
    max_relaunches: int = 1
    storage_path: str | None = None
    resource_wait_s: float = 0.0
    init_from: str | None = None

    def __post_init__(self) -> None:
        one_of("trainer.launcher", self.launcher, LAUNCHERS)
        one_of("trainer.precision", self.precision, PRECISIONS)
        for name in (
            "num_workers",
            "max_steps",
            "batch_size",
            "lr",
            "grad_accum_steps",
            "log_every",
            "checkpoint_every",
            "num_to_keep",
        ):
            positive(f"trainer.{name}", getattr(self, name))
        for name in (
            "weight_decay",
            "warmup_steps",
            "max_grad_norm",
            "max_failures",
            "max_relaunches",
            "resource_wait_s",
        ):
            positive(f"trainer.{name}", getattr(self, name), allow_zero=True)
        if self.cpus_per_worker is not None:
            positive("trainer.cpus_per_worker", self.cpus_per_worker)
        if self.launcher == "local" and self.num_workers != 1:
            raise ConfigError("trainer.num_workers", self.num_workers, "1 with trainer.launcher=local")
        if self.launcher == "local" and self.storage_path and "://" in self.storage_path:
            raise ConfigError(
                "trainer.storage_path", self.storage_path, "a local directory with trainer.launcher=local"
            )


# Keys of the DeepSpeed JSON the generated config takes from `trainer` / `deepspeed`: `deepspeed.config` may not
# set them, or one experiment would optimise differently under ZeRO than under DDP without saying so.
DEEPSPEED_OWNED = {
    ("train_batch_size",): "trainer.batch_size (per worker; with trainer.grad_accum_steps and the workers)",
    ("train_micro_batch_size_per_gpu",): "trainer.batch_size",
    ("gradient_accumulation_steps",): "trainer.grad_accum_steps",
    ("gradient_clipping",): "trainer.max_grad_norm",
    ("optimizer", "params", "lr"): "trainer.lr",
    ("optimizer", "params", "weight_decay"): "trainer.weight_decay",
    ("scheduler",): "trainer.warmup_steps (the train loop's linear schedule)",
    ("bf16",): "trainer.precision",
    ("fp16",): "trainer.precision",
    ("zero_optimization", "stage"): "deepspeed.zero_stage",
}


def _owned_key(config: dict, path: tuple[str, ...]) -> bool:
    node = config
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _value_at(config: dict, path: tuple[str, ...]):
    for key in path:
        config = config[key]
    return config


@dataclass
class DeepSpeedConfig:
    """DeepSpeed ZeRO inside every train worker; disabled, the same loop runs under DDP.

    Precision, clipping, accumulation, learning rate and batch size come from `trainer`, so one experiment switches
    between DDP and any ZeRO stage without changing what it optimises. `config` is merged over the generated
    DeepSpeed JSON for any knob not named here (bucket sizes, prefetching, ...).
    """

    enabled: bool = False
    zero_stage: int = 2
    offload_optimizer: bool = False
    offload_params: bool = False
    torch_adam: bool = True
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        one_of("deepspeed.zero_stage", self.zero_stage, ZERO_STAGES)
        if self.offload_optimizer and self.zero_stage == 0:
            raise ConfigError("deepspeed.offload_optimizer", True, "false with zero_stage 0 (needs ZeRO 1-3)")
        if self.offload_params and self.zero_stage != 3:
            raise ConfigError("deepspeed.offload_params", True, "false unless deepspeed.zero_stage=3")
        for path, owner in DEEPSPEED_OWNED.items():
            if _owned_key(self.config, path):
                name = "deepspeed.config." + ".".join(path)
                raise ConfigError(name, _value_at(self.config, path), f"unset: set {owner} instead")


@dataclass
class EvalConfig:
    """Generation-based evaluation before and after training, or of saved weights (`model_dir`).

    Besides `data.eval_split`, QA evaluation can score `extra_splits` (the same `data.max_eval_examples` of each;
    their metrics carry an `@<split>` suffix), time `latency_questions` questions one at a time after
    `latency_warmup` untimed ones (p50/p95 at batch 1 of the whole answer, time to first token, per token and
    retrieval; `latency_via=endpoint` also through a Ray Serve application of the model, as `serve.*` configures
    it), and measure forgetting: the generator's loss on `forgetting_texts` general-text passages (SciFact abstracts)
    after training minus before. `storage_probe` (closed-book QA) also asks whether the model completes each
    question's gold passage up to the answer with the answer (`rag_pet.evaluation.storage_probe`).
    """

    task: str = "qa"
    model_dir: str | None = None
    before_training: bool = False
    after_training: bool = True
    batch_size: int = 64
    max_new_tokens: int = 16
    precision: str = "auto"
    extra_splits: list[str] = field(default_factory=list)
    latency_questions: int = 0
    latency_warmup: int = 2
    latency_via: str = "in_process"
    forgetting_texts: int = 0
    storage_probe: bool = False

    retrieval_methods: list[str] = field(default_factory=lambda: ["dense", "bm25", "hybrid"])
    retrieval_k: int = 100
    retrieval_split: str = "test"

    runner: str = "in_process"
    endpoint_url: str | None = None
    concurrency: int = 8
    auth_token_env: str | None = None
    adapter: str | None = None
    request_timeout_s: float = 120.0
    cpus_per_predictor: float = 1.0
    gpus_per_predictor: float = 0.0

    def __post_init__(self) -> None:
        one_of("eval.task", self.task, EVAL_TASKS)
        one_of("eval.runner", self.runner, EVAL_RUNNERS)
        one_of("eval.precision", self.precision, EVAL_PRECISIONS)
        if self.runner == "endpoint" and not self.endpoint_url:
            raise ConfigError(
                "eval.endpoint_url", None, "the URL of a running service (what `python -m jobs.serve` printed)"
            )
        for name in ("concurrency", "request_timeout_s", "cpus_per_predictor"):
            positive(f"eval.{name}", getattr(self, name))
        positive("eval.gpus_per_predictor", self.gpus_per_predictor, allow_zero=True)
        positive("eval.batch_size", self.batch_size)
        for split in self.extra_splits:
            one_of("eval.extra_splits", split, SPLITS)
        positive("eval.latency_questions", self.latency_questions, allow_zero=True)
        positive("eval.latency_warmup", self.latency_warmup, allow_zero=True)
        one_of("eval.latency_via", self.latency_via, LATENCY_VIA)
        positive("eval.forgetting_texts", self.forgetting_texts, allow_zero=True)
        positive("eval.max_new_tokens", self.max_new_tokens)
        positive("eval.retrieval_k", self.retrieval_k)
        for method in self.retrieval_methods:
            one_of("eval.retrieval_methods", method, RETRIEVAL_METHODS)


@dataclass
class TrackingConfig:
    """W&B tracking: offline by default, online when the user has a key; `group` gathers related runs (a study's
    cells, a sweep's trials); `name` is the run's name (default: the experiment's)."""

    mode: str = "offline"
    project: str = "rag_pet"
    entity: str | None = None
    group: str | None = None
    name: str | None = None
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        one_of("tracking.mode", self.mode, WANDB_MODES)


def check_same_articles(data: DataConfig, corpus: CorpusConfig) -> None:
    """The corpus of the data's own article source must hold the data's very articles: the fictional set generated
    from the same seed and size, the documents of the same folder."""
    if data.name != corpus.name or data.name not in ("fictional", "documents"):
        return
    for name in ("fictional_seed", "fictional_entities") if data.name == "fictional" else ("path",):
        if getattr(corpus, name) != getattr(data, name):
            raise ConfigError(
                f"corpus.{name}",
                getattr(corpus, name),
                f"data.{name} ({getattr(data, name)}): the corpus holds the data's articles (leave it unset)",
            )


@dataclass
class RagPetConfig:
    """One experiment: a row of a results table."""

    experiment_name: str = "default"
    run_dir: str = "outputs/default"
    seed: int = 0
    objective: str = "closed_book"
    # The objective's own settings, which it declares and checks (rag_pet/objectives; e.g. raft's gold_fraction)
    # where a job's config is made (`rag_pet.experiment_config`).
    objective_options: dict[str, Any] = field(default_factory=dict)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    retriever: RetrieverConfig = field(default_factory=RetrieverConfig)
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    index: IndexConfig = field(default_factory=IndexConfig)
    rag: RagConfig = field(default_factory=RagConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    sweep: SweepConfig | None = None  # set by `python -m jobs.sweep` (conf/sweep_job.yaml) only

    @property
    def index_source(self) -> IndexSource:
        """The corpus, index settings and retriever of this run's index."""
        return IndexSource(self.corpus, self.index, self.retriever)

    def __post_init__(self) -> None:
        check_same_articles(self.data, self.corpus)
        if self.model.dtype == "float16" and not self.trainer.use_gpu:
            raise ConfigError(
                "model.dtype", "float16", "float32 or bfloat16 on CPU (set trainer.use_gpu=true for float16)"
            )
        if self.trainer.precision == "fp16" and not self.trainer.use_gpu:
            raise ConfigError("trainer.precision", "fp16", "fp32 or bf16 on CPU (set trainer.use_gpu=true for fp16)")
        if self.deepspeed.enabled and self.peft.method == "adalora":
            raise ConfigError(
                "peft.method",
                "adalora",
                "a method other than adalora with deepspeed.enabled (AdaLoRA reads per-parameter gradients, which"
                " ZeRO keeps partitioned); or run it under DDP with deepspeed=disabled",
            )
