"""Per-step time and peak memory of LoRA, IA3, prompt tuning and full fine-tuning on SmolLM2-135M (ratio to full).

python benchmarks/pet_methods.py [--steps 8]
"""

from __future__ import annotations

import argparse

from train_job import run_train, step_seconds

METHODS = ("full", "lora", "ia3", "prompt")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides, e.g. trainer.use_gpu=true")
    args = parser.parse_args()
    common = [
        "experiment=closed_book_lora",
        "trainer.launcher=local",
        f"trainer.max_steps={args.steps}",
        f"trainer.batch_size={args.batch_size}",
        f"trainer.checkpoint_every={args.steps}",
        *args.extra,
    ]
    rows = {method: run_train([*common, f"peft={method}"]) for method in METHODS}
    full = rows["full"]
    print(f"SmolLM2-135M, {args.steps} steps x batch {args.batch_size}, standalone loop, {' '.join(args.extra)}")
    print("| method | trainable params | s/step | step time vs full | peak memory (GiB) | memory vs full | tokens/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for method, row in rows.items():
        print(
            f"| {method} | {row['trainable_params']:,} | {step_seconds(row):.2f} | "
            f"{step_seconds(row) / step_seconds(full):.2f}x | {row['peak_memory_bytes'] / 2**30:.2f} | "
            f"{row['peak_memory_bytes'] / full['peak_memory_bytes']:.2f}x | {row['tokens_per_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
