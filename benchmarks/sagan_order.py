#!/usr/bin/env python3
"""sagan's image order, in Python: the batches `sagan train` draws, for trainers that must see the same.

    python3 benchmarks/sagan_order.py --count 60000 --seed 1 --epoch 0 [--batch 64 --batches 3]

Prints, as JSON, the permutation of an epoch (`BatchLoader.permutation(count:seed:epoch:)`), or with
--batch the image indices of the first --batches batches of a run. The generator is our Philox4x32-10
(Sources/Autodiff/Random.swift: `RandomGenerator`, its `derived(purpose:)` keys and `nextBlock()`),
the shuffle our Fisher-Yates with Lemire's multiply-shift (Sources/Datasets/BatchLoader.swift), and
the cursor moves to the next epoch when fewer than a batch of images remain, as `makeBatch` does.
DatasetsTests compares this script's output with the Swift loader's, so the two cannot drift apart.
"""
import argparse
import json
import sys

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF


def derived(seed, purpose):
    """`RandomGenerator.derived(purpose:)`: the key of an independent stream."""
    mixed = seed ^ ((purpose * 0x9E37_79B9_7F4A_7C15) & MASK64)
    mixed = ((mixed ^ (mixed >> 31)) * 0xBF58_476D_1CE4_E5B9) & MASK64
    return mixed ^ (mixed >> 29)


def blocks(key, counter=0):
    """Philox4x32-10 blocks of four 32-bit words, from `counter` on (`RandomGenerator.nextBlock()`)."""
    while True:
        c0, c1, c2, c3 = counter & MASK32, (counter >> 32) & MASK32, 0, 0
        k0, k1 = key & MASK32, (key >> 32) & MASK32
        counter = (counter + 1) & MASK64
        for round in range(10):
            product0 = 0xD251_1F53 * c0
            product1 = 0xCD9E_8D57 * c2
            c0, c1, c2, c3 = ((product1 >> 32) ^ c1 ^ k0) & MASK32, product1 & MASK32, \
                ((product0 >> 32) ^ c3 ^ k1) & MASK32, product0 & MASK32
            if round < 9:
                k0, k1 = (k0 + 0x9E37_79B9) & MASK32, (k1 + 0xBB67_AE85) & MASK32
        yield c0, c1, c2, c3


def permutation(count, seed, epoch):
    """The image order of `epoch`: `BatchLoader.permutation(count:seed:epoch:)`."""
    order = list(range(count))
    index = count - 1
    stream = blocks(derived(seed, (0x5EED_0000 + epoch) & MASK64))
    while index > 0:
        for word in next(stream):
            if index <= 0:
                break
            other = (word * (index + 1)) >> 32
            order[index], order[other] = order[other], order[index]
            index -= 1
    return order


def batch_indices(count, batch, seed):
    """The image indices of each batch of a run, batch after batch (one loader, from its start)."""
    epoch, position, order = 0, 0, permutation(count, seed, 0)
    while True:
        if position + batch > count:
            epoch, position = epoch + 1, 0
            order = permutation(count, seed, epoch)
        yield order[position:position + batch]
        position += batch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, required=True, help="images in the packed set")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--batch", type=int, help="print batches of this size instead of a permutation")
    parser.add_argument("--batches", type=int, default=1)
    args = parser.parse_args()
    if args.batch:
        stream = batch_indices(args.count, args.batch, args.seed)
        print(json.dumps([next(stream) for _ in range(args.batches)]))
    else:
        print(json.dumps(permutation(args.count, args.seed, args.epoch)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
