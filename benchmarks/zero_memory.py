"""Memory per worker of full fine-tuning SmolLM2-135M on 2 Ray Train workers: DDP vs ZeRO-2 vs ZeRO-3.

Two figures per engine, both rank 0's: the memory held at the last step (RSS on CPU, allocated on GPU) and the peak
(which on CPU also counts loading transients, such as every rank reading the checkpoint file).

python benchmarks/zero_memory.py [--steps 4]
"""

from __future__ import annotations

import argparse

from train_job import run_train, step_seconds

ENGINES = ("disabled", "zero2", "zero3")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    common = [
        "experiment=closed_book_full",
        "trainer.num_workers=2",
        "trainer.batch_size=4",
        f"trainer.max_steps={args.steps}",
        f"trainer.checkpoint_every={args.steps}",
    ]
    rows = {engine: run_train([*common, f"deepspeed={engine}"]) for engine in ENGINES}
    ddp = rows["disabled"]
    print(f"SmolLM2-135M full fine-tuning, fp32, 2 workers x batch 4, {args.steps} steps; memory of rank 0")
    print("| engine | memory held while training (GiB) | vs DDP | peak memory (GiB) | vs DDP | s/step | vs DDP |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for engine, row in rows.items():
        name = "DDP" if engine == "disabled" else engine.replace("zero", "ZeRO-")
        memory = [row[key] / 2**30 for key in ("train_memory_bytes", "peak_memory_bytes")]
        print(
            f"| {name} | {memory[0]:.2f} | {row['train_memory_bytes'] / ddp['train_memory_bytes']:.2f}x | "
            f"{memory[1]:.2f} | {row['peak_memory_bytes'] / ddp['peak_memory_bytes']:.2f}x | "
            f"{step_seconds(row):.2f} | {step_seconds(row) / step_seconds(ddp):.2f}x |"
        )


if __name__ == "__main__":
    main()
