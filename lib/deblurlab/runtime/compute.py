"""How the networks compute on this machine: precision, XLA and distribution, chosen per device.

On a CPU the choice comes from this machine's tuning record, ``tuning/<machine key>.json`` beside
this file (``python -m deblurlab.perf --tune`` writes it; the key is the CPU's name and vector
units, so records of several machines live side by side and each machine reads its own):

- **precision**: mixed bfloat16 for a model where the CPU has bf16 instructions and the record
  measured it at least ``BF16_MIN_GAIN`` faster; float32 elsewhere (bf16 is emulated without them).
- **XLA** for a model where the record measured at least ``XLA_MIN_GAIN``.
- A machine or model without a record: float32, and XLA as the closest record measured it. The
  set-up's ``source`` says which rule applied, and every run's state keeps it.
- ``steps_per_execution`` stays 1: Keras rounds each epoch up to a multiple of it, which breaks the
  epoch-exact stream and resume.

**GPU**: mixed precision (bfloat16 on compute capability 8.0 and newer, float16 before), Keras' XLA
choice, and, over every visible GPU when there are several (the batch size stays global),
``tf.distribute.MirroredStrategy`` on the TensorFlow backend or ``keras.distribution.DataParallel``
on JAX.

**Workers**: in a cluster of several processes (``deblurlab.runtime.cluster``: one worker each, on
one machine or many), every worker trains a replica, with ``MultiWorkerMirroredStrategy`` on
TensorFlow or ``DataParallel`` over every process's devices on JAX; the batch size stays global.

**Backend**: the Keras backend in use (``keras.backend.backend()``) picks the TensorFlow-only
pieces (MirroredStrategy, ``tf.config`` device queries) or their JAX counterparts
(``DataParallel``, ``jax.devices()``). On JAX every step is compiled with XLA (``jit_compile``
False would run it op by op), and a CPU trains float32 (the bf16 checks are TensorFlow's).

``DEBLURLAB_PRECISION`` (a Keras dtype policy such as ``float32``) and ``DEBLURLAB_JIT``
(``0``/``1``) override the choice, e.g. to train the float32 reference a mixed-precision run is
compared with.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..core.host import cpu_features, cpu_name, keras_backend
from ..core.paths import PACKAGE_DIR

# A change becomes training's default on a CPU where this machine's tuning record measured training
# at least this much faster with it than without (paired medians,
# `python -m deblurlab.perf --tune`).
XLA_MIN_GAIN = 1.10
BF16_MIN_GAIN = 1.10
VECTOR_UNITS = {"avx2", "avx512", "bf16", "amx"}  # the words of a machine key that name them
# One record per machine kind (CPU name and vector units), e.g. tuning/amd-epyc-avx2.json.
TUNING_DIR = PACKAGE_DIR / "tuning"
PRECISION_ENV = "DEBLURLAB_PRECISION"
JIT_ENV = "DEBLURLAB_JIT"
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class ComputeSetup:
    """How one model trains on this machine: device, precision, XLA and distribution, and
    what the choice rests on (``source``)."""

    device: str  # "cpu" or "gpu"
    gpus: int
    precision: str  # a Keras dtype policy
    jit_compile: bool | str  # True / False, or "auto" for Keras' choice
    distribute: bool  # MirroredStrategy (TensorFlow) / DataParallel (JAX) over every GPU
    devices: tuple[str, ...] | None = None  # the replicas' devices; None: every GPU
    source: str = ""  # what the choice rests on (a tuning record, or the rule for no record)
    backend: str = field(default_factory=keras_backend)  # the Keras backend it runs on
    workers: int = 1  # processes training together (runtime.cluster), each with these devices

    def describe(self) -> str:
        """One line naming the device(s), precision, XLA and the choice's source."""
        jit = {True: "XLA", False: "no XLA", "auto": "XLA as Keras chooses"}[self.jit_compile]
        replicas = len(self.devices) if self.devices else self.gpus
        spread = "MirroredStrategy" if self.backend == "tensorflow" else "DataParallel"
        kind = "GPUs" if self.device == "gpu" else "devices"
        if self.workers > 1:
            spread = "MultiWorkerMirroredStrategy" if self.backend == "tensorflow" else spread
            each = f" with {self.gpus} GPU{'s' if self.gpus > 1 else ''} each" if self.gpus else ""
            return f"{self.precision}, {jit}, {spread} over {self.workers} workers{each}"
        where = (
            f"{spread} over {replicas} {kind}"
            if self.distribute
            else f"{self.gpus} GPU"
            if self.device == "gpu"
            else "CPU"
        )
        return f"{self.precision}, {jit}, {where}"

    def record(self) -> dict:
        """The set-up as a run's state keeps it: every field and the description."""
        return {**dataclasses.asdict(self), "description": self.describe()}

    def arithmetic(self) -> str:
        """The part of the set-up that can change a result: the precision, and where it ran."""
        where = f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}" if self.device == "gpu" else "CPU"
        workers = f" x {self.workers} workers" if self.workers > 1 else ""
        return f"{self.precision} on {where}{workers}"

    def strategy(self):
        """TensorFlow only: the tf.distribute strategy (MirroredStrategy when distributing)."""
        import tensorflow as tf

        if self.workers > 1:
            from . import cluster

            return cluster.strategy()
        if not self.distribute:
            return tf.distribute.get_strategy()
        return tf.distribute.MirroredStrategy(list(self.devices) if self.devices else None)

    def distribution(self):
        """Other backends: ``keras.distribution.DataParallel`` over the devices when distributing,
        else None."""
        if self.workers > 1:
            from . import cluster

            return cluster.distribution()
        if not self.distribute:
            return None
        import keras

        return keras.distribution.DataParallel(devices=list(self.devices) if self.devices else None)

    def _spread(self):
        if self.backend == "tensorflow":
            return self.strategy().scope()
        distribution = self.distribution()
        return distribution.scope() if distribution is not None else contextlib.nullcontext()

    @contextlib.contextmanager
    def scope(self):
        """Build, compile and train models inside: the dtype policy and the strategy (TensorFlow)
        or distribution (JAX) apply to them. The global policy is restored on leaving (a built
        model keeps its own)."""
        import keras

        if self.backend != keras_backend():
            raise RuntimeError(
                f"a set-up for the {self.backend} backend, used on {keras_backend()}"
            )
        previous = keras.mixed_precision.dtype_policy()
        keras.mixed_precision.set_global_policy(self.precision)
        try:
            with self._spread():
                yield self
        finally:
            keras.mixed_precision.set_global_policy(previous)

    def local(self) -> ComputeSetup:
        """The same set-up on this process's devices alone (no cluster), e.g. to evaluate."""
        if self.workers == 1:
            return self
        return dataclasses.replace(self, workers=1, distribute=self.gpus > 1)

    def apply(self, model) -> None:
        """Set XLA on a compiled model (Keras' "auto" is left alone)."""
        if self.jit_compile != "auto":
            model.jit_compile = bool(self.jit_compile)


def split_arithmetic(arithmetic: str) -> tuple[str, str]:
    """``ComputeSetup.arithmetic``'s text as (precision, where): "float32 on CPU" -> ("float32",
    "CPU")."""
    precision, _, where = arithmetic.partition(" on ")
    return precision, where


def choose(
    gpus: int,
    capability: tuple[int, int] | None = None,
    env: dict | None = None,
    model_name: str | None = None,
    key: str | None = None,
    records: dict | None = None,
    seeds: dict | None = None,
    backend: str | None = None,
    workers: int = 1,
) -> ComputeSetup:
    """The set-up for ``gpus`` visible GPUs (the first one's compute ``capability``) and, on a CPU,
    for ``model_name`` on the machine ``key`` (default: this one) from its tuning record in
    ``records`` (default: the kept ones, ``tuning_records()``), with the environment's overrides,
    for the Keras ``backend`` (default: the one in use), as one of ``workers`` processes."""
    env = os.environ if env is None else env
    backend = keras_backend() if backend is None else backend
    if gpus:
        precision = "mixed_bfloat16" if capability and capability >= (8, 0) else "mixed_float16"
        setup = dict(
            device="gpu",
            gpus=gpus,
            precision=precision,
            jit_compile="auto",
            distribute=gpus > 1,
            source="GPU rule: mixed precision, Keras' XLA choice",
        )
    else:
        precision, jit, source = cpu_choice(
            model_name,
            machine_key() if key is None else key,
            tuning_records() if records is None else records,
            seeds,
        )
        if backend == "jax":  # JAX always compiles; the records' bf16 was checked on TensorFlow
            bf16 = ", float32 (bf16 was checked on TensorFlow)" if precision != "float32" else ""
            jit, precision, source = True, "float32", f"{source}; XLA always on JAX{bf16}"
        setup = dict(
            device="cpu",
            gpus=0,
            precision=precision,
            jit_compile=jit,
            distribute=False,
            source=source,
        )
    setup["backend"] = backend
    setup["workers"] = workers
    setup["distribute"] = setup["distribute"] or workers > 1
    if workers > 1 and backend == "tensorflow" and not gpus and setup["jit_compile"] is True:
        setup["jit_compile"] = False  # TensorFlow's XLA has no collectives between CPU workers
        setup["source"] += "; no XLA: TensorFlow's XLA has no collectives between CPU workers"
    if env.get(PRECISION_ENV):
        if env[PRECISION_ENV] not in POLICIES:
            raise ValueError(
                f"{PRECISION_ENV}={env[PRECISION_ENV]!r}: choose one of {', '.join(POLICIES)}"
            )
        setup["precision"] = env[PRECISION_ENV]
    if env.get(JIT_ENV):
        if env[JIT_ENV] not in ("0", "1"):
            raise ValueError(f"{JIT_ENV}={env[JIT_ENV]!r}: use 0 (no XLA) or 1 (XLA)")
        setup["jit_compile"] = env[JIT_ENV] == "1"
    return ComputeSetup(**setup)


def replace_precision(setup: ComputeSetup, precision: str) -> ComputeSetup:
    """``setup`` with another dtype policy; XLA is kept only where the tuning record measured that
    pair (bf16 with XLA does not compile for every model)."""
    if precision not in POLICIES:
        raise ValueError(f"precision {precision!r}: choose one of {', '.join(POLICIES)}")
    keep = precision == "float32" or setup.device == "gpu" or setup.backend == "jax"
    jit = setup.jit_compile if keep else False
    return dataclasses.replace(
        setup,
        precision=precision,
        jit_compile=jit,
        source=f"{setup.source}; precision set to {precision} by the caller",
    )


def machine_key(name: str | None = None, flags: set[str] | None = None) -> str:
    """This CPU's kind as a file name: its model name and vector units, e.g. ``amd-epyc-avx2``."""
    text = f"{cpu_name() if name is None else name} {cpu_features(flags)}"
    return re.sub(r"[^a-z0-9]+", "-", text.lower().replace("avx-512", "avx512")).strip("-")


@lru_cache(maxsize=4)
def _load_records(folder: str, suffix: str, dots: int = 0) -> dict:
    """The records ``<name><suffix>`` of ``folder`` whose name has ``dots`` dots, by name."""
    paths = sorted(Path(folder).glob(f"*{suffix}"))
    return {
        path.name[: -len(suffix)]: json.loads(path.read_text())
        for path in paths
        if path.name[: -len(suffix)].count(".") == dots
    }


def tuning_records() -> dict[str, dict]:
    """Every kept tuning record (``tuning/<machine key>.json``), by machine key."""
    return _load_records(str(TUNING_DIR), ".json")


def seed_records() -> dict[tuple[str, str], dict]:
    """Every kept seed/precision record (``tuning/<machine key>.<model>.seeds.json``, written by
    ``python -m deblurlab.seeds --model <model>``): (machine key, model) -> record."""
    return {
        tuple(name.split(".")): record
        for name, record in _load_records(str(TUNING_DIR), ".seeds.json", dots=1).items()
    }


def _gain(record: dict, model_name: str, label: str) -> float | None:
    variant = record.get("tuning", {}).get("summary", {}).get(model_name, {}).get(label)
    return None if variant is None else variant.get("train_ratio")


def _has_bf16(record: dict) -> bool:
    flags = record.get("cpu_flags", {})
    return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))


def bf16_quality_kept(key: str, model_name: str, seeds: dict | None = None) -> bool:
    """Whether the model's own seed/precision check on this machine (``python -m deblurlab.seeds
    --model``) found mixed bfloat16 within the float32 seed-to-seed spread; no check, no bf16."""
    record = (seed_records() if seeds is None else seeds).get((key, model_name)) or {}
    return bool(record.get("precision_check", {}).get("mixed_bfloat16", {}).get("quality_kept"))


def cpu_choice(
    model_name: str | None, key: str, records: dict, seeds: dict | None = None
) -> tuple[str, bool | str, str]:
    """(precision, jit_compile, source) for ``model_name`` on the CPU ``key``.

    With a record of this machine that tuned the model: XLA where it gained >= XLA_MIN_GAIN; mixed
    bfloat16 where the CPU has bf16 instructions, it gained >= BF16_MIN_GAIN and the machine's
    seed/precision check kept the quality (``seeds``, default: the kept records), with XLA only if
    the record measured the pair together, since some models do not compile so. Without one: float32
    (bf16 needs this machine's measurement) and XLA from the record that tuned the model on the
    nearest vector units (fewest of ``VECTOR_UNITS`` differing), then by name.
    """
    record = records.get(key)
    if record and model_name in record.get("tuning", {}).get("summary", {}):
        jit = (_gain(record, model_name, "jit_compile") or 0.0) >= XLA_MIN_GAIN
        bf16 = (
            _has_bf16(record)
            and (_gain(record, model_name, "mixed_bfloat16") or 0.0) >= BF16_MIN_GAIN
            and bf16_quality_kept(key, model_name, seeds)
        )
        if bf16:
            pair = _gain(record, model_name, "mixed_bfloat16+jit_compile")
            jit = pair is not None and pair >= max(
                XLA_MIN_GAIN, _gain(record, model_name, "mixed_bfloat16")
            )
        return ("mixed_bfloat16" if bf16 else "float32"), jit, f"tuning record {key}"
    others = sorted(
        (k for k, r in records.items() if model_name in r.get("tuning", {}).get("summary", {})),
        key=lambda k: (len((set(k.split("-")) ^ set(key.split("-"))) & VECTOR_UNITS), k),
    )
    if not others:
        return (
            "float32",
            "auto",
            f"no tuning record of {model_name} ({key}): float32, Keras' XLA default",
        )
    jit = (_gain(records[others[0]], model_name, "jit_compile") or 0.0) >= XLA_MIN_GAIN
    return (
        "float32",
        jit,
        (
            f"no tuning record of {model_name} on {key}: float32 (bf16 needs this machine's "
            f"measurement), XLA as measured on {others[0]}"
        ),
    )


def gpu_devices(backend: str | None = None) -> list[dict]:
    """The GPUs the Keras ``backend`` (default: the one in use) sees: one dict each, with
    ``name`` and ``capability`` ((major, minor) or None)."""
    backend = keras_backend() if backend is None else backend
    if backend == "tensorflow":
        import tensorflow as tf

        found = []
        for gpu in tf.config.list_physical_devices("GPU"):
            details = tf.config.experimental.get_device_details(gpu)
            capability = details.get("compute_capability")
            found.append(
                {
                    "name": details.get("device_name", gpu.name),
                    "capability": tuple(capability) if capability else None,
                }
            )
        return found
    if backend == "jax":
        import jax

        found = []
        for device in jax.devices():
            if device.platform != "gpu":
                continue
            capability = getattr(device, "compute_capability", None)
            found.append(
                {
                    "name": device.device_kind,
                    "capability": tuple(int(p) for p in str(capability).split(".")[:2])
                    if capability
                    else None,
                }
            )
        return found
    import torch

    return [
        {"name": torch.cuda.get_device_name(i), "capability": torch.cuda.get_device_capability(i)}
        for i in range(torch.cuda.device_count())
    ]


def current(model_name: str | None = None) -> ComputeSetup:
    """The set-up for the GPUs the Keras backend sees here (and ``model_name`` on a CPU), as one
    worker of this process's cluster (``deblurlab.runtime.cluster``; started here if not yet)."""
    from . import cluster

    workers = cluster.initialize().count
    gpus = gpu_devices()
    capability = gpus[0]["capability"] if gpus else None
    return choose(len(gpus), capability, model_name=model_name, workers=workers)
