"""A backend-neutral training stream: numpy batches that are a pure function of their index.

``Stream`` is a ``keras.utils.PyDataset`` over every batch of epochs [first, last): batch ``i``
is ``make_batch(i)``, so a run resumed at epoch k asks for exactly the batches an uninterrupted
run would. Keras sees one worker (its enqueuer restarts at batch 0 every epoch, which would
replay the first epoch); the stream itself computes the next ``ahead`` batches on ``threads``
threads (numpy releases the GIL) while the model trains, and hands them out in index order.
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


class Stream(keras.utils.PyDataset):
    """``n_batches`` batches ``make_batch(i)`` (tuples of arrays), ``steps`` of them an epoch.

    Args: n_batches, steps (per epoch), make_batch (index -> tuple of numpy arrays, pure and
    thread-safe), threads and ahead (look-ahead; ``threads=0`` computes each batch on demand).
    ``stream[i]`` returns batch i; iterating returns every batch in order; ``map(fn)`` returns
    the stream of ``fn(*batch)``.
    """

    def __init__(
        self,
        n_batches: int,
        steps: int,
        make_batch: Callable[[int], tuple],
        threads: int = THREADS,
        ahead: int = AHEAD,
    ):
        super().__init__(workers=1, use_multiprocessing=False)
        self.n_batches, self.steps = int(n_batches), int(steps)
        self.make_batch = make_batch
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
        """The stream of ``fn(*batch)``, with the same steps and look-ahead."""
        return Stream(
            self.n_batches, self.steps, lambda i: fn(*self.make_batch(i)), self.threads, self.ahead
        )

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - at interpreter exit the pool may be gone already
            pass
