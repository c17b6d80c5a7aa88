"""Ray Data corpus encoding (rag_pet.retrieval.encode) vs single-process SentenceTransformer.encode, same texts.

python benchmarks/encode_throughput.py [--passages 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from rag_pet.config import RetrieverConfig
from rag_pet.data import load_scifact, passage_text
from rag_pet.models.pretrained import minilm_dir
from rag_pet.retrieval.encode import encode_corpus, load_encoded
from rag_pet.runtime import ensure_ray


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--passages", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--part-size", type=int, default=1024, help="passages per encoded part (index.part_size)")
    args = parser.parse_args()
    passages = load_scifact().corpus[: args.passages]
    ids, texts = [p.id for p in passages], [passage_text(p) for p in passages]
    cores = torch.get_num_threads()

    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    start = time.perf_counter()
    baseline = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
    baseline_s = time.perf_counter() - start

    ensure_ray(include_dashboard=False, log_to_driver=False)
    out_dir = Path(tempfile.mkdtemp())
    start = time.perf_counter()
    encode_corpus(
        ids,
        texts,
        RetrieverConfig(source="minilm", doc_max_length=256),
        out_dir,
        part_size=args.part_size,
        batch_size=args.batch_size,
        concurrency=1,
        num_cpus=cores,
        num_gpus=0,
    )
    ray_s = time.perf_counter() - start
    _, vectors = load_encoded(out_dir, len(ids), args.part_size)
    max_diff = float(np.abs(vectors - baseline).max())

    print(
        f"{len(texts)} SciFact abstracts (title + text, max 256 tokens), MiniLM-L6, batch {args.batch_size}, "
        f"{cores} CPU threads"
    )
    print("| path | seconds | passages/s | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| SentenceTransformer.encode (1 process) | {baseline_s:.1f} | {len(texts) / baseline_s:.1f} | 1.00x |")
    print(
        f"| Ray Data map_batches (1 actor, incl. actor start) | {ray_s:.1f} | {len(texts) / ray_s:.1f} | "
        f"{baseline_s / ray_s:.2f}x |"
    )
    print(f"max |difference| between the two embeddings: {max_diff:.2e}")


if __name__ == "__main__":
    main()
