"""A backend-neutral training stream: numpy batches that are a pure function of their index.

``Stream`` is a ``keras.utils.PyDataset`` over every batch of epochs [first, last): batch ``i``
is ``make_batch(i)``, so a run resumed at epoch k asks for exactly the batches an uninterrupted
run would. Keras sees one worker (its enqueuer restarts at batch 0 every epoch, which would
replay the first epoch); the stream itself computes the next ``ahead`` batches on ``threads``
threads (numpy releases the GIL) while the model trains, and hands them out in index order.

``shard(index, count)`` is one training worker's part of every batch (``shard_rows``: the
``index``-th of ``count`` equal row ranges, in order), so that the workers' parts, put together in
worker order, are the stream's batches; a stream that knows its batch's ``rows`` computes only
those (``make_batch(i, part)``), others cut them from the whole batch.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import keras
import numpy as np

THREADS = max(2, min(8, os.cpu_count() or 2))  # batch-making threads (a GPU host has more cores)
AHEAD = 4  # batches computed ahead of the one asked for


def _as_numpy(values):
    """Each array of a (nested) tuple, or one array, as a plain numpy array."""
    if isinstance(values, tuple):
        return tuple(_as_numpy(v) for v in values)
    return np.asarray(values)


def shard_rows(rows: int, index: int, count: int) -> slice:
    """Worker ``index`` of ``count``'s rows of a batch of ``rows``: the ``index``-th of ``count``
    equal, consecutive ranges. Raises ValueError when ``rows`` does not split evenly."""
    if not 0 <= index < count:
        raise ValueError(f"worker index {index} is not one of 0..{count - 1}")
    if rows % count:
        raise ValueError(
            f"a batch of {rows} does not split over {count} workers: choose a batch size that is "
            f"a multiple of {count}, or another number of workers"
        )
    part = rows // count
    return slice(index * part, (index + 1) * part)


def _rows(batch, part: slice):
    """Rows ``part`` of every array of a (nested) tuple of arrays."""
    if isinstance(batch, tuple):
        return tuple(_rows(b, part) for b in batch)
    return batch[part]


def _first(batch):
    return _first(batch[0]) if isinstance(batch, tuple) else batch


def item_rows(make_item: Callable[[int], tuple], first: int, per_item: int, part: slice) -> tuple:
    """Rows ``part`` of a batch of consecutive items from ``first`` on, each ``make_item(j)`` a
    tuple of arrays of ``per_item`` rows, making only the items those rows come from."""
    start, stop = part.start or 0, part.stop
    items = [make_item(j) for j in range(first + start // per_item, first - (-stop // per_item))]
    skip = start % per_item
    return tuple(
        np.concatenate([np.asarray(item[k]) for item in items])[skip : skip + stop - start]
        for k in range(len(items[0]))
    )


class Stream(keras.utils.PyDataset):
    """``n_batches`` batches ``make_batch(i)`` (tuples of arrays), ``steps`` of them an epoch.

    Args: n_batches, steps (per epoch), make_batch (index -> tuple of numpy arrays, pure and
    thread-safe), threads and ahead (look-ahead; ``threads=0`` computes each batch on demand),
    rows (each batch's rows, when ``make_batch(i, part)`` computes the rows ``part``, a slice,
    alone; shards then make only their own rows).
    ``stream[i]`` returns batch i; iterating returns every batch in order; ``map(fn)`` returns
    the stream of ``fn(*batch)``; ``shard(index, count)`` the stream of one worker's parts.
    """

    def __init__(
        self,
        n_batches: int,
        steps: int,
        make_batch: Callable[[int], tuple],
        threads: int = THREADS,
        ahead: int = AHEAD,
        rows: int | None = None,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.n_batches, self.steps = int(n_batches), int(steps)
        self.make_batch = make_batch
        self.rows = rows
        self.threads, self.ahead = int(threads), int(ahead)
        self._lock = threading.Lock()
        self._pending: dict[int, Future] = {}
        self._pool: ThreadPoolExecutor | None = None

    @property
    def num_batches(self) -> int:
        """The number of batches (Keras's name for ``len``)."""
        return self.n_batches

    def __len__(self) -> int:
        return self.n_batches

    def _compute(self, index: int) -> tuple:
        return _as_numpy(tuple(self.make_batch(index)))

    def __getitem__(self, index: int) -> tuple:
        index = int(index)
        if not 0 <= index < self.n_batches:
            raise IndexError(f"batch {index} of a stream of {self.n_batches}")
        if self.threads <= 0:
            return self._compute(index)
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="deblurlab-stream")
            for stale in [k for k in self._pending if k < index]:
                self._pending.pop(stale).cancel()
            for k in range(index, min(index + self.ahead + 1, self.n_batches)):
                if k not in self._pending:
                    self._pending[k] = self._pool.submit(self._compute, k)
            future = self._pending.pop(index)
        try:
            return future.result()
        finally:
            if index == self.n_batches - 1:
                self.close()

    def __iter__(self):
        for index in range(self.n_batches):
            yield self[index]

    def close(self) -> None:
        """Stop the look-ahead threads (a later request starts them again)."""
        with self._lock:
            pool, self._pool = self._pool, None
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def map(self, fn: Callable) -> Stream:
        """The stream of ``fn(*batch)``, with the same steps and look-ahead; ``fn`` must treat
        rows alike (a shard of the result is ``fn`` of the shard)."""
        batch = lambda i, *part: fn(*self.make_batch(i, *part))  # noqa: E731
        return Stream(self.n_batches, self.steps, batch, self.threads, self.ahead, self.rows)

    def shard(self, index: int, count: int) -> Stream:
        """Worker ``index`` of ``count``'s part of every batch (``shard_rows``), same steps."""
        shard_rows(count, index, count)  # checks the index
        if self.rows is not None:
            rows = shard_rows(self.rows, index, count)
            part = lambda i: self.make_batch(i, rows)  # noqa: E731
        else:

            def part(i):
                batch = _as_numpy(tuple(self.make_batch(i)))
                return _rows(batch, shard_rows(len(_first(batch)), index, count))

        return Stream(self.n_batches, self.steps, part, self.threads, self.ahead)

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the pool may be gone already
            pass
