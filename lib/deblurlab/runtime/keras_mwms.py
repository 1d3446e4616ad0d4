"""Two repairs that let Keras 3's ``fit`` run under ``tf.distribute.MultiWorkerMirroredStrategy``.

Keras 3 (checked on 3.15) fails there in two places, both where it reduces per-replica values
across workers with ``strategy.reduce``, which takes one tensor, not a nest, and not a scalar
along an axis (keras-team/keras#20585, tensorflow/tensorflow#72388):

1. ``_maybe_symbolic_build`` reduces the first batch, a nest, only to learn its shapes;
   here it takes this worker's local batch instead (the shapes are the same).
2. ``reduce_per_replica`` (``"auto"``, i.e. ``"mean"``) reduces each scalar metric along axis 0;
   here it averages them across replicas (``axis=None``), as on one machine.

``install()`` applies both once; away from a multi-worker strategy they hand over to the
originals, so single-machine training is unchanged. The gradients are untouched: Keras and the
strategy sum them as ever.
"""

from __future__ import annotations

_INSTALLED: list[str] = []


def _multi_worker(trainer_module, strategy) -> bool:
    return bool(trainer_module._collective_all_reduce_multi_worker(strategy))


def install() -> None:
    """Apply the two repairs to Keras's TensorFlow trainer (once)."""
    if _INSTALLED:
        return
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tt

    missing = [
        name
        for name in ("reduce_per_replica", "_collective_all_reduce_multi_worker")
        if not hasattr(tt, name)
    ]
    if missing or not hasattr(tt.TensorFlowTrainer, "_maybe_symbolic_build"):
        raise RuntimeError(
            f"this Keras's TensorFlow trainer has no {missing or '_maybe_symbolic_build'}: "
            "deblurlab.runtime.keras_mwms needs updating for it (or train across workers on JAX)"
        )
    build, reduce = tt.TensorFlowTrainer._maybe_symbolic_build, tt.reduce_per_replica

    def symbolic_build(self, iterator=None, data_batch=None):
        strategy = self._distribute_strategy
        if iterator is None or strategy is None or not _multi_worker(tt, strategy):
            return build(self, iterator=iterator, data_batch=data_batch)
        for _, _, it in iterator:
            data_batch = tree.map_structure(
                lambda v: strategy.experimental_local_results(v)[0], next(it)
            )
            break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and _multi_worker(tt, strategy):
            return tree.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce(values, strategy, reduction)

    tt.TensorFlowTrainer._maybe_symbolic_build = symbolic_build
    tt.reduce_per_replica = reduce_per_replica
    _INSTALLED.append("installed")
