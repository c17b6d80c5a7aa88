"""Retrieval quality: SciFact test (full corpus) and SQuAD validation (2,067 paragraphs), dense vs BM25 vs hybrid.

Runs `experiment=<corpus>_retrieval` through the index job's function (encoded parts already on disk are reused)
and the evaluate job's function.

    python benchmarks/retrieval_quality.py --storage outputs/indexes [--corpus scifact squad]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rag_pet.evaluation import format_table
from rag_pet.experiment import build_index, evaluate_model
from rag_pet.experiment_config import compose_experiment

CONF = Path(__file__).resolve().parents[1] / "conf"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--storage", default="outputs/indexes")
    parser.add_argument("--corpus", nargs="+", default=["scifact", "squad"])
    args = parser.parse_args()
    for corpus in args.corpus:
        overrides = [
            f"experiment={corpus}_retrieval",
            f"index.storage_path={args.storage}",
            "index.encode_cpus=2",
            "tracking=disabled",
            f"run_dir=outputs/benchmarks/retrieval_{corpus}",
        ]
        config = compose_experiment(CONF, overrides)
        start = time.perf_counter()
        built = build_index(config)
        build_s = time.perf_counter() - start
        summary = evaluate_model(config)
        print(
            f"\n{corpus}: index {built['name']} v{built['version']} ({built['num_vectors']} vectors), "
            f"built in {build_s:.0f} s (encoded parts are reused across runs)"
        )
        print(format_table(summary["rows"]))


if __name__ == "__main__":
    main()
