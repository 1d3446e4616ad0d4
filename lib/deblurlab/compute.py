"""How the networks compute on this machine: precision, XLA and distribution, chosen per device.

The choices come from ``python -m deblurlab.bench --tune`` (report/results/bench_<device>_tuning.json):

- **CPU**: float32. Mixed bfloat16 is emulated on processors without bfloat16 instructions and
  trained 5-8x slower on the AVX2 machine this project was built on. XLA per model (``CPU_XLA``).
  ``steps_per_execution`` stays 1: at most 10% faster, and Keras rounds each epoch up to a multiple
  of it (13 steps ran as 20 at 10), which breaks the epoch-exact stream and resume.
- **GPU**: mixed precision (bfloat16 on compute capability 8.0 and newer, where it needs no loss
  scaling; float16 before), Keras' XLA choice (on when the model supports it), and
  ``tf.distribute.MirroredStrategy`` over every visible GPU when there are several, so a multi-GPU
  machine trains with no code change (the batch size stays global).

``DEBLURLAB_PRECISION`` (a Keras dtype policy such as ``float32``) and ``DEBLURLAB_JIT`` (``0``/``1``)
override the choice, e.g. to train the float32 reference a mixed-precision run is compared with.
Every run's state keeps the set-up that trained it (``ComputeSetup.record``).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass

# XLA on a CPU, per model: on where `python -m deblurlab.bench --tune` measured training at least 10%
# faster with jit_compile=True than without (paired medians; AMD EPYC, AVX2, 2 cores, batch 32,
# 2026-11-24). A model that is not listed (not measured, or a smaller gain) keeps Keras' choice: no
# XLA on a CPU.
XLA_MIN_GAIN = 1.10
CPU_XLA = {
    "resunet1": True,         # x1.42
    "resunet3": True,         # x1.37
    "srndeblur_cifar": True,  # x1.25
    "caessc_d30_f64": True,   # x1.14
    "srndeblur_reds": True,   # x1.16 (64x64 patches, batch 10)
    # eddensenet: x1.07, below XLA_MIN_GAIN
}
PRECISION_ENV = "DEBLURLAB_PRECISION"
JIT_ENV = "DEBLURLAB_JIT"
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class ComputeSetup:
    device: str                 # "cpu" or "gpu"
    gpus: int
    precision: str              # a Keras dtype policy
    jit_compile: bool | str     # True / False, or "auto" for Keras' choice
    distribute: bool            # MirroredStrategy over every GPU
    devices: tuple[str, ...] | None = None  # MirroredStrategy's devices; None: every GPU

    def describe(self) -> str:
        jit = {True: "XLA", False: "no XLA", "auto": "XLA as Keras chooses"}[self.jit_compile]
        replicas = len(self.devices) if self.devices else self.gpus
        where = (f"MirroredStrategy over {replicas} {'GPUs' if self.device == 'gpu' else 'devices'}" if self.distribute
                 else f"{self.gpus} GPU" if self.device == "gpu" else "CPU")
        return f"{self.precision}, {jit}, {where}"

    def record(self) -> dict:
        """The set-up as a run's state keeps it: every field and the description."""
        return {**dataclasses.asdict(self), "description": self.describe()}

    def arithmetic(self) -> str:
        """The part of the set-up that can change a result: the precision, and where it ran."""
        where = f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}" if self.device == "gpu" else "CPU"
        return f"{self.precision} on {where}"

    def strategy(self):
        import tensorflow as tf

        if not self.distribute:
            return tf.distribute.get_strategy()
        return tf.distribute.MirroredStrategy(list(self.devices) if self.devices else None)

    @contextlib.contextmanager
    def scope(self):
        """Build and compile models inside: the dtype policy and the strategy apply to them. The
        global policy is restored on leaving (a built model keeps its own)."""
        import keras

        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_global_policy(self.precision)
        try:
            with self.strategy().scope():
                yield self
        finally:
            keras.mixed_precision.set_global_policy(previous)

    def apply(self, model) -> None:
        """Set XLA on a compiled model (Keras' "auto" is left alone)."""
        if self.jit_compile != "auto":
            model.jit_compile = bool(self.jit_compile)


def choose(gpus: int, capability: tuple[int, int] | None = None, env: dict | None = None,
           model_name: str | None = None) -> ComputeSetup:
    """The set-up for ``gpus`` visible GPUs (the first one's compute ``capability``) and, on a CPU,
    for ``model_name`` (``CPU_XLA``), with the environment's overrides."""
    env = os.environ if env is None else env
    if gpus:
        precision = "mixed_bfloat16" if capability and capability >= (8, 0) else "mixed_float16"
        setup = dict(device="gpu", gpus=gpus, precision=precision, jit_compile="auto", distribute=gpus > 1)
    else:
        setup = dict(device="cpu", gpus=0, precision="float32", jit_compile=CPU_XLA.get(model_name, "auto"),
                     distribute=False)
    if env.get(PRECISION_ENV):
        if env[PRECISION_ENV] not in POLICIES:
            raise ValueError(f"{PRECISION_ENV}={env[PRECISION_ENV]!r}: choose one of {', '.join(POLICIES)}")
        setup["precision"] = env[PRECISION_ENV]
    if env.get(JIT_ENV):
        if env[JIT_ENV] not in ("0", "1"):
            raise ValueError(f"{JIT_ENV}={env[JIT_ENV]!r}: use 0 (no XLA) or 1 (XLA)")
        setup["jit_compile"] = env[JIT_ENV] == "1"
    return ComputeSetup(**setup)


def current(model_name: str | None = None) -> ComputeSetup:
    """The set-up for the GPUs TensorFlow sees on this machine (and ``model_name`` on a CPU)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    capability = None
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability")
    return choose(len(gpus), tuple(capability) if capability else None, model_name=model_name)
