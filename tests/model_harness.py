"""One test of a registered model, shared by every architecture (after keras-hub's
run_backbone_test).

``run_model_test(name, expected_params, identity_at_init=...)`` builds the model from the registry
and checks, on a small batch:

- every output's shape: the last is the input's, each earlier one (a multi-scale model's coarser
  scales) half the size of the next;
- every output's range, by the kind in the spec's ``reference["range"]``: ``"unit"`` (default,
  a sigmoid) in [0, 1], ``"relu"`` >= 0, ``"any"`` only finite;
- identity at initialisation where the model promises it (each output is the input, averaged down
  to that output's size) and, where it does not, that the output is not the input;
- the parameter count, pinned by the caller (a change to the architecture must be deliberate);
- a save/load round trip: ``save_weights`` to a ``.weights.h5``, ``load_weights`` into a freshly
  built model, same outputs;
- one training step: ``train.compile_for_deblurring`` with a ``TrainConfig``, one batch (run
  eagerly, for speed), finite loss.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from deblurlab.models import build_model, get_spec
from deblurlab.training.profiles import TrainConfig
from deblurlab.training.train import compile_for_deblurring

RANGES = ("unit", "relu", "any")
IDENTITY_ATOL = 1e-5


def _outputs(model, x) -> list[np.ndarray]:
    out = model(x, training=False)
    return [
        np.asarray(o, dtype=np.float32) for o in (out if isinstance(out, (list, tuple)) else [out])
    ]


def _downsample(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Block means of ``images`` at ``size`` (an integer factor smaller): AveragePooling2D's
    result."""
    n, h, w, c = images.shape
    fh, fw = h // size[0], w // size[1]
    return images.reshape(n, size[0], fh, size[1], fw, c).mean(axis=(2, 4))


def _targets(model, sharp: np.ndarray) -> list[np.ndarray] | np.ndarray:
    sizes = [tuple(o.shape[1:3]) for o in model.outputs]
    targets = [_downsample(sharp, size) for size in sizes]
    return targets if len(targets) > 1 else targets[0]


def run_model_test(
    name: str,
    expected_params: int,
    *,
    identity_at_init: bool,
    input_shape=(32, 32, 3),
    batch: int = 2,
    seed: int = 0,
) -> None:
    spec = get_spec(name)
    kind = spec.reference.get("range", "unit")
    assert kind in RANGES, f"{name}: reference['range']={kind!r}; use one of {RANGES}"
    rng = np.random.default_rng(seed)
    # Inside (0, 1) and away from the logit's clip at 1e-3, so that an identity is exact.
    x = rng.uniform(0.02, 0.98, (batch, *input_shape)).astype("float32")
    model = build_model(name, input_shape=input_shape)

    # Shapes of every output.
    outputs = _outputs(model, x)
    assert len(outputs) == len(model.outputs), (
        f"{name}: {len(outputs)} outputs, the graph declares {len(model.outputs)}"
    )
    h, w, c = input_shape
    for k, out in enumerate(outputs):
        factor = 2 ** (len(outputs) - 1 - k)
        assert out.shape == (batch, h // factor, w // factor, c), (
            f"{name}: output {k} ({model.output_names[k]}) has shape {out.shape}, expected "
            f"{(batch, h // factor, w // factor, c)} "
            "(the last output at the input's size, each earlier one half the next)"
        )

    # Range, by the output kind the spec declares.
    for k, out in enumerate(outputs):
        assert np.isfinite(out).all(), f"{name}: output {k} is not finite"
        if kind == "unit":
            assert out.min() >= 0.0 and out.max() <= 1.0, (
                f"{name}: output {k} leaves [0, 1] ({out.min()}, {out.max()})"
            )
        elif kind == "relu":
            assert out.min() >= 0.0, f"{name}: a ReLU output below 0 ({out.min()})"

    # Identity at initialisation, where promised.
    gaps = [float(np.abs(out - _downsample(x, out.shape[1:3])).max()) for out in outputs]
    if identity_at_init:
        assert max(gaps) <= IDENTITY_ATOL, (
            f"{name}: a fresh model should return its input, but differs by up to "
            f"{max(gaps):.2g} (per output: {gaps})"
        )
    else:
        assert min(gaps) > 1e-3, (
            f"{name}: a fresh model returns its input (gap {min(gaps):.2g}); "
            "pass identity_at_init=True"
        )

    # Parameters, pinned.
    assert model.count_params() == expected_params, (
        f"{name}: {model.count_params():,} parameters, pinned at {expected_params:,}. "
        "If the architecture change "
        "is deliberate, update the pinned count (and retrain the zoo's weights)."
    )

    # Save/load round trip, on perturbed weights (a fresh identity model would pass vacuously).
    for variable in model.weights:
        value = np.asarray(variable.numpy())
        value = value + rng.normal(0.0, 0.02, value.shape).astype(value.dtype)
        if "variance" in variable.path:
            value = np.abs(value) + 1e-3
        variable.assign(value)
    before = _outputs(model, x)
    fresh = build_model(name, input_shape=input_shape)
    assert any(np.abs(a - b).max() > 1e-4 for a, b in zip(_outputs(fresh, x), before)), (
        f"{name}: perturbed weights leave the output unchanged; the round trip would prove nothing"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{name}.weights.h5"
        model.save_weights(path)
        fresh.load_weights(path)
    for k, (a, b) in enumerate(zip(_outputs(fresh, x), before)):
        np.testing.assert_allclose(
            a, b, atol=1e-6, err_msg=f"{name}: output {k} changed by save/load"
        )

    # One training step.
    sharp = rng.uniform(0.0, 1.0, x.shape).astype("float32")
    config = TrainConfig(epochs=1, batch_size=batch)
    compile_for_deblurring(model, config)
    # Eagerly: tracing and optimising the training graph would take ~10x the step (~25 s for
    # EDDenseNet on 2 cores); the graph-mode step is what the notebooks' smoke runs train with.
    model.jit_compile, model.run_eagerly = False, True
    history = model.fit(
        x, _targets(model, sharp), batch_size=config.batch_size, epochs=1, verbose=0
    )
    loss = history.history["loss"][0]
    assert np.isfinite(loss), f"{name}: the training step's loss is {loss}"
