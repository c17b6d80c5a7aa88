"""Corpus encoding with Ray Data: an actor pool encodes parts of the corpus and writes each part atomically.

Parts already on disk are skipped, so an interrupted encoding resumes where it stopped.
"""

from __future__ import annotations

import io
import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from rag_pet.config import RetrieverConfig
from rag_pet.models.rag import build_trained_encoder
from rag_pet.storage import write_bytes_atomic

logger = logging.getLogger(__name__)


def part_path(folder: Path, part: int) -> Path:
    """File of one encoded part."""
    return Path(folder) / f"part_{part:05d}.npz"


def _write_part(path: Path, ids: list[str], vectors: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.asarray(ids), vectors=vectors)
    write_bytes_atomic(path, buffer.getvalue())


class PartEncoder:
    """Ray Data actor: encodes whole parts (one row each) and writes `part_XXXXX.npz` files."""

    def __init__(self, retriever: dict, out_dir: str, batch_size: int, use_gpu: bool, trained_dir: str | None = None):
        self.device = torch.device("cuda" if use_gpu and torch.cuda.is_available() else "cpu")
        encoder = build_trained_encoder(RetrieverConfig(**retriever), trained_dir)
        self.encoder = encoder.to(self.device).eval()
        self.out_dir, self.batch_size = Path(out_dir), batch_size

    def encode(self, texts: list[str]) -> np.ndarray:
        """Document vectors, float32, in input order (batched longest first, so batches pad little)."""
        order = np.argsort([-len(text) for text in texts], kind="stable")
        with torch.inference_mode():
            chunks = [
                self.encoder.encode_documents([texts[i] for i in order[start : start + self.batch_size]])
                for start in range(0, len(texts), self.batch_size)
            ]
        vectors = np.empty((len(texts), self.encoder.dim), dtype=np.float32)
        vectors[order] = torch.cat(chunks).float().cpu().numpy()
        return vectors

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for part, ids, texts in zip(batch["part"], batch["ids"], batch["texts"], strict=True):
            _write_part(part_path(self.out_dir, int(part)), list(ids), self.encode(list(texts)))
        return {"part": batch["part"], "count": np.array([len(ids) for ids in batch["ids"]])}


def encode_corpus(
    ids: list[str],
    texts: list[str],
    retriever: RetrieverConfig,
    out_dir: Path,
    *,
    part_size: int,
    batch_size: int,
    concurrency: int,
    num_cpus: float,
    num_gpus: float,
    trained_dir: Path | None = None,
) -> int:
    """Encode texts into `out_dir` in parts of `part_size`; return how many parts were (re)encoded now.

    `trained_dir` holds towers a training run saved (`rag_pet.models.rag.save_trained_towers`) over the configured
    encoder."""
    import ray

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [
        {"part": part, "ids": ids[start : start + part_size], "texts": texts[start : start + part_size]}
        for part, start in enumerate(range(0, len(ids), part_size))
        if not part_path(out_dir, part).is_file()
    ]
    if not rows:
        return 0
    logger.info("encoding %d of %d parts with Ray Data (%d actors)", len(rows), -(-len(ids) // part_size), concurrency)
    dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
        PartEncoder,
        fn_constructor_kwargs={
            "retriever": asdict(retriever),
            "out_dir": str(out_dir),
            "batch_size": batch_size,
            "use_gpu": num_gpus > 0,
            "trained_dir": str(trained_dir) if trained_dir else None,
        },
        batch_size=1,
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
    dataset.materialize()
    return len(rows)


def load_encoded(out_dir: Path, count: int, part_size: int) -> tuple[list[str], np.ndarray]:
    """Ids and vectors of all parts, in corpus order."""
    ids, vectors = [], []
    for part in range(-(-count // part_size)):
        with np.load(part_path(out_dir, part)) as data:
            ids.extend(data["ids"].tolist())
            vectors.append(data["vectors"])
    return ids, np.concatenate(vectors)
