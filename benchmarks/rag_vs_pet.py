"""RAG vs PET on knowledge no training question saw: SmolLM2-135M on SQuAD test-article questions.

Rows: closed-book zero-shot, closed-book LoRA, RAG (frozen MiniLM retriever, frozen generator) and hybrid RAG + LoRA
(LoRA trained with retrieved context, RAG-Sequence marginal over the top k). Both trained rows get the same optimizer
steps and batch size; every row reads its prompt inside SmolLM2-Instruct's chat turn.

python benchmarks/rag_vs_pet.py [--steps 30] [--questions 200]
"""

from __future__ import annotations

import argparse

from train_job import run_job


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--passage-tokens", type=int, default=160)
    parser.add_argument("--extra", nargs="*", default=[], help="more overrides, e.g. trainer.use_gpu=true")
    args = parser.parse_args()
    common = [
        "data.eval_split=test",
        f"data.max_eval_examples={args.questions}",
        "data.chat_template=true",
        "eval.max_new_tokens=12",
        "tracking=disabled",
        *args.extra,
    ]
    budget = [
        f"trainer.max_steps={args.steps}",
        f"trainer.batch_size={args.batch_size}",
        f"trainer.checkpoint_every={args.steps}",
        "trainer.warmup_steps=3",
    ]
    rag = [f"rag.k={args.k}", f"rag.passage_max_tokens={args.passage_tokens}"]
    rows = run_job(["experiment=closed_book_lora", "eval.before_training=true", *budget, *common])
    rows += run_job(["experiment=rag_frozen", *rag, *common])
    rows += run_job(["experiment=hybrid_rag_lora", *rag, *budget, *common])
    print(
        f"SmolLM2-135M on {args.questions} SQuAD test-article questions; trained rows: {args.steps} steps x batch "
        f"{args.batch_size}, LoRA r=16; RAG: MiniLM flat index, k={args.k}, passages cut to {args.passage_tokens}"
    )
    print("| method | EM | F1 | gold passage in top 1 / 5 | trainable params | train s | eval s/question |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for row in rows:
        recall = (
            f"{row['retrieval_recall@1']:.3f} / {row['retrieval_recall@5']:.3f}" if "retrieval_recall@1" in row else "-"
        )
        print(
            f"| {row['method']} | {row['exact_match']:.3f} | {row['f1']:.3f} | {recall} | "
            f"{row.get('trainable_params', 0):,} | {row.get('train_seconds', 0.0):.0f} | "
            f"{row['seconds_per_question']:.2f} |"
        )


if __name__ == "__main__":
    main()
