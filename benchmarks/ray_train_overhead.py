"""Step time of the same LoRA loop under Ray Train's TorchTrainer (1 worker) vs standalone, SmolLM2-135M.

python benchmarks/ray_train_overhead.py [--steps 10]
"""

from __future__ import annotations

import argparse

from train_job import run_train, step_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    common = [
        "experiment=closed_book_lora",
        "trainer.num_workers=1",
        f"trainer.max_steps={args.steps}",
        f"trainer.checkpoint_every={args.steps}",
    ]
    standalone = run_train([*common, "trainer.launcher=local"])
    ray_train = run_train([*common, "trainer.launcher=ray"])
    print(f"SmolLM2-135M LoRA, {args.steps} steps x batch 8, one worker with every CPU")
    print("| launcher | s/step | step time vs standalone | job wall (s) | wall vs standalone |")
    print("| --- | --- | --- | --- | --- |")
    for name, row in (("standalone", standalone), ("TorchTrainer, 1 worker", ray_train)):
        print(
            f"| {name} | {step_seconds(row):.2f} | {step_seconds(row) / step_seconds(standalone):.3f}x | "
            f"{row['train_wall_seconds']:.1f} | {row['train_wall_seconds'] / standalone['train_wall_seconds']:.2f}x |"
        )


if __name__ == "__main__":
    main()
