"""Training batches of like length: every item once per pass across the workers, each worker's batch its share
of one global batch of like lengths, a new order each epoch, and the same order again for the same seed."""

import math

from rag_pet.training.batching import LengthGroupedBatches

LENGTHS = [128 if i % 4 == 0 else 20 + i % 7 for i in range(403)]  # texts among short questions


def mega_batches(items: int, width: int) -> int:
    """How many mega-batches transformers' `get_length_grouped_indices` sorts within (its default size)."""
    return math.ceil(items / (max(min(items // (width * 4), 50), 1) * width))


def rank_orders(epoch: int, seed: int = 0, workers: int = 2, batch_size: int = 4) -> list[list[int]]:
    orders = []
    for rank in range(workers):
        sampler = LengthGroupedBatches(LENGTHS, batch_size, workers, rank, seed)
        sampler.set_epoch(epoch)
        orders.append(list(sampler))
        assert len(orders[-1]) == len(sampler)
    return orders


def test_workers_share_each_global_batch_and_cover_every_item_but_the_remainder():
    orders = rank_orders(epoch=0)
    flat = [index for order in orders for index in order]
    assert len(flat) == len(set(flat)) == len(LENGTHS) // 8 * 8
    global_batches = [orders[0][s : s + 4] + orders[1][s : s + 4] for s in range(0, len(orders[0]), 4)]
    mixed = sum(len({LENGTHS[i] == 128 for i in batch}) > 1 for batch in global_batches)
    assert mixed <= mega_batches(len(LENGTHS), 8)  # texts share a batch with questions only where mega-batches meet


def test_the_order_changes_with_the_epoch_and_repeats_with_the_seed():
    assert rank_orders(epoch=0) == rank_orders(epoch=0)
    assert rank_orders(epoch=0) != rank_orders(epoch=1)
    assert rank_orders(epoch=0, seed=0) != rank_orders(epoch=0, seed=1)
