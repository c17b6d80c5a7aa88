"""Typed configuration schemas: what every Hydra config composes into, validated on construction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rag_pet.config.checks import one_of, positive
from rag_pet.config.data import SPLITS, DataConfig, check_same_articles
from rag_pet.config.retrieval import CorpusConfig, IndexConfig, IndexSource, RagConfig, RetrieverConfig
from rag_pet.config.serve import ServeConfig
from rag_pet.config.sweep import SweepConfig
from rag_pet.errors import ConfigError

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
