"""Backend-neutral helpers shared by the per-backend training modules."""

import itertools

__all__ = ["checked_batches"]


def checked_batches(iterator, count, check):
    """Takes up to `count` batches from `iterator`, runs `check(batch)` on each, returns an iterator over them.

    Every batch of one `train_function` call is checked before the first of them reaches the device, so
    a rejected batch leaves the model exactly as it was. Raises `StopIteration` when `iterator` is
    exhausted (as Keras' own step functions do).

    Example:

    >>> list(checked_batches(iter([1, 2, 3]), 2, lambda b: None))
    [1, 2]
    """
    batches = list(itertools.islice(iterator, max(int(count), 1)))
    if not batches:
        raise StopIteration
    for batch in batches:
        check(batch)
    return iter(batches)
