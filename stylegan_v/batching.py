"""The one batch rule for combining two inputs (content and motion, two contents, two motions).

Equal batch sizes pair video b with video b; a batch of 1 is shared by every video of the other.
"""

from __future__ import annotations


def combined_batch(a: int, b: int, name_a: str, name_b: str) -> int:
    """The batch size of pairing a batch of `a` with a batch of `b`, or a ValueError naming both."""
    for size, name in ((a, name_a), (b, name_b)):
        if size < 1:
            raise ValueError(f"{name} batch_size must be >= 1, got {size}")
    if a != b and 1 not in (a, b):
        raise ValueError(f"{name_a} batch_size ({a}) and {name_b} batch_size ({b}) differ; make them equal, "
                         "or set one of them to 1 to share it.")
    return max(a, b)
