"""Build models by name. Each architecture file registers its variants with ``@register``.

A model is one file: its ``@register(...)`` call holds everything the rest of the study needs to
know about it (the default profile's epochs and image cap, the benchmark's speed target, the
report's optimiser settings and results), and ``deblurlab.models`` imports every architecture file
it finds, so nothing else lists the models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import keras

DATASETS = ("cifar10", "motion")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, family, data set, description, training settings,
    the original report's scores and its default-profile sizes."""

    name: str
    builder: Callable[..., keras.Model]
    family: str
    dataset: str  # "cifar10" or "motion"
    description: str
    defaults: dict = field(default_factory=dict)
    training: dict = field(
        default_factory=dict
    )  # learning_rate, patience, batch_size (full profile)
    reference: dict = field(
        default_factory=dict
    )  # the original report's mse / psnr / ssim (+ "range")
    default_epochs: int | None = (
        None  # epochs at the default profile; None: the dataset's plan sets them
    )
    default_train_images: int | None = (
        None  # training images at the default profile; None: all of them
    )
    bench_target: float | None = None  # the benchmark's training images/s target; None: no target


_REGISTRY: dict[str, ModelSpec] = {}
_REQUIRED = object()


def register(
    name: str,
    family: str,
    dataset: str,
    description: str,
    training: dict | None = None,
    reference: dict | None = None,
    *,
    default_epochs=_REQUIRED,
    default_train_images: int | None = None,
    bench_target: float | None = None,
    **defaults,
):
    """Decorator:
    ``@register("resunet1", family="resunet", dataset="cifar10", default_epochs=4, ...)``.

    - ``default_epochs`` (required): the epochs of the ``default`` profile (``profiles.CifarPlan``),
      sized to about 5 CPU minutes of training. ``None`` is allowed only for a ``"motion"`` model,
      whose epochs come from ``profiles.MOTION_SIZES``. There is no fallback: leaving it out is an
      error here, at import.
    - ``default_train_images``: the cap on training images an epoch at the ``default`` profile (the
      first N of the training split), for models too slow to see all of them; None means all.
    - ``bench_target``: the training images/s that ``python -m deblurlab.perf`` checks this model
      against; None means no target.
    - ``training``: the report's optimiser settings (learning_rate, patience, batch_size);
      ``reference``: the report's own results, and ``range`` the output kind (``"unit"``, the
      default: a sigmoid's [0, 1]; ``"relu"``: >= 0; ``"any"``: unbounded).
    - every other keyword: default arguments for the builder.
    """
    if dataset not in DATASETS:
        raise ValueError(
            f"register({name!r}): dataset={dataset!r}; choose one of {', '.join(DATASETS)}"
        )
    if default_epochs is _REQUIRED:
        raise TypeError(
            f"register({name!r}): default_epochs is required (the default profile's epochs; "
            "None only for a motion model, whose epochs come from profiles.MOTION_SIZES)"
        )
    if default_epochs is None and dataset != "motion":
        raise ValueError(f"register({name!r}): a {dataset} model needs default_epochs, an int >= 1")
    if default_epochs is not None and (not isinstance(default_epochs, int) or default_epochs < 1):
        raise ValueError(f"register({name!r}): default_epochs={default_epochs!r}; use an int >= 1")
    if default_train_images is not None and (
        not isinstance(default_train_images, int) or default_train_images < 1
    ):
        raise ValueError(
            f"register({name!r}): default_train_images={default_train_images!r}; "
            "use an int >= 1 or None (all)"
        )
    if bench_target is not None and not bench_target > 0:
        raise ValueError(
            f"register({name!r}): bench_target={bench_target!r}; use images/s > 0 or None"
        )

    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(
            name,
            builder,
            family,
            dataset,
            description,
            dict(defaults),
            dict(training or {}),
            dict(reference or {}),
            default_epochs,
            default_train_images,
            None if bench_target is None else float(bench_target),
        )
        return builder

    return wrap


def unregister(name: str) -> ModelSpec:
    """Remove ``name`` from the registry and return its spec. For tests that register a toy model:
    call it in a ``finally`` or a fixture, so that no other test sees the toy."""
    try:
        return _REGISTRY.pop(name)
    except KeyError:
        raise KeyError(
            f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
        ) from None


def get_spec(name: str) -> ModelSpec:
    """The ``ModelSpec`` registered as ``name``; KeyError listing the registered names if none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}"
        ) from None


def build_model(name: str, input_shape=(32, 32, 3), **overrides) -> keras.Model:
    """Build the registered model ``name`` for ``input_shape``; ``overrides`` replace its
    defaults."""
    spec = get_spec(name)
    return spec.builder(input_shape=tuple(input_shape), **{**spec.defaults, **overrides})


def list_models(family: str | None = None, dataset: str | None = None) -> list[str]:
    """The names of the registered models, optionally of one ``family`` and/or ``dataset``."""
    return [
        name
        for name, spec in _REGISTRY.items()
        if (family is None or spec.family == family)
        and (dataset is None or spec.dataset == dataset)
    ]
