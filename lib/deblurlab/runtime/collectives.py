"""What the workers of a cluster (``deblurlab.runtime.cluster``) do together while they train.

- ``fit_input``: each worker's rows of every batch, in the form its engine's ``fit`` reads;
- ``gather_ints``, ``check_same``, ``barrier``, ``any_worker``: small agreements through the
  engine's own collectives (every worker must call them, in the same order);
- ``lost_worker``: a clear error when the engine reports that another worker went away.

On one worker each is a no-op (or the identity).
"""

from __future__ import annotations

import numpy as np

from .cluster import ClusterError, current, strategy


def _signature(batch):
    import tensorflow as tf

    if isinstance(batch, tuple):
        return tuple(_signature(b) for b in batch)
    return tf.TensorSpec(batch.shape, tf.as_dtype(batch.dtype))


def replica_parts(stream, index: int, count: int, local: int) -> list:
    """Worker ``index`` of ``count``'s parts of ``stream``, one per local replica (``local``):
    replica r of the worker trains rows part ``index * local + r`` of ``count * local``."""
    return [stream.shard(index * local + r, count * local) for r in range(local)]


def fit_input(stream):
    """What ``fit`` reads on this worker: ``stream`` itself on one worker; in a cluster only this
    worker's rows of each batch (``stream.shard``), on TensorFlow as a dataset distributed with
    ``distribute_datasets_from_function`` (one element per local replica, nothing re-split)."""
    cluster = current()
    if not cluster.multi:
        return stream
    from ..core.host import keras_backend

    if keras_backend() != "tensorflow":
        return stream.shard(cluster.index, cluster.count)
    import tensorflow as tf

    spread = strategy()
    local = spread.num_replicas_in_sync // cluster.count
    parts = replica_parts(stream, cluster.index, cluster.count, local)
    signature = _signature(parts[0][0])

    def batches():
        for i in range(len(stream)):
            for part in parts:
                yield part[i]

    def dataset(context):
        if (context.num_input_pipelines, context.input_pipeline_id) != (
            cluster.count,
            cluster.index,
        ):
            raise ClusterError(
                f"TensorFlow's input pipeline {context.input_pipeline_id} of "
                f"{context.num_input_pipelines} is not {cluster.describe()}"
            )
        data = tf.data.Dataset.from_generator(batches, output_signature=signature)
        return data.apply(tf.data.experimental.assert_cardinality(len(stream) * local))

    return spread.distribute_datasets_from_function(dataset)


_GATHER: dict = {}


def gather_ints(values) -> np.ndarray:
    """Every worker's ``values`` (small ints, the same number on each), one row a worker (on
    TensorFlow one a replica), through the engine's collectives. Every worker must call it."""
    values = np.asarray(values, np.int32).reshape(1, -1)
    cluster = current()
    if not cluster.multi:
        return values
    from ..core.host import keras_backend

    if keras_backend() == "tensorflow":
        import tensorflow as tf

        if "tf" not in _GATHER:  # one function, traced once a shape: eager collectives are slow
            spread = strategy()
            _GATHER["tf"] = tf.function(
                lambda v: spread.gather(spread.run(tf.identity, args=(v,)), axis=0)
            )
        return _GATHER["tf"](tf.constant(values)).numpy()
    from jax.experimental import multihost_utils

    return np.asarray(multihost_utils.process_allgather(values[0])).reshape(-1, values.shape[1])


def check_same(what: str, values, hint: str = "") -> None:
    """Raise ClusterError unless every worker passes the same ``values`` (ints) for ``what``."""
    rows = gather_ints(values)
    if (rows != rows[0]).any():
        raise ClusterError(
            f"the workers disagree on {what}: {rows.tolist()} (one row a worker). {hint}".strip()
        )


def barrier() -> None:
    """Return once every worker has called it."""
    gather_ints([0])


def any_worker(flag: bool) -> bool:
    """Whether ``flag`` is true on any worker (e.g. a time limit passed); all must call it."""
    return bool(gather_ints([int(bool(flag))]).any())


LOST = (
    "Unavailable",
    "Aborted",
    "Cancelled",
    "DeadlineExceeded",
    "heartbeat",
    "gloo",
    "Connection",
)


def lost_worker(error: BaseException, where: str) -> ClusterError | None:
    """A clear error for ``error`` if it says another worker failed or went silent, else None;
    ``where`` names the checkpoint a restart resumes from."""
    cluster = current()
    text = f"{type(error).__name__}: {error}"
    if not cluster.multi or not any(word in text for word in LOST):
        return None
    first = text.strip().splitlines()[0][:300]
    return ClusterError(
        f"worker {cluster.index} of {cluster.count}: training stopped because another worker "
        f"failed or could not be reached ({first}). Start every worker again with the same "
        f"command: the run resumes from {where}."
    )
