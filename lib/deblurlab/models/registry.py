"""Build models by name. Each architecture file registers its variants with ``@register``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import keras


@dataclass(frozen=True)
class ModelSpec:
    name: str
    builder: Callable[..., keras.Model]
    family: str
    dataset: str  # "cifar10" or "motion"
    description: str
    defaults: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)  # learning_rate, patience, batch_size (full profile)
    reference: dict = field(default_factory=dict)  # the original report's mse / psnr / ssim


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, family: str, dataset: str, description: str, training: dict | None = None,
             reference: dict | None = None, **defaults):
    """Decorator: ``@register("resunet1", family="resunet", dataset="cifar10", ...)``.

    ``training`` holds the report's optimiser settings for the model, ``reference`` the report's
    own results, and ``defaults`` keyword arguments for the builder.
    """

    def wrap(builder):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is registered twice")
        _REGISTRY[name] = ModelSpec(name, builder, family, dataset, description, dict(defaults),
                                    dict(training or {}), dict(reference or {}))
        return builder

    return wrap


def get_spec(name: str) -> ModelSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY))}") from None


def build_model(name: str, input_shape=(32, 32, 3), **overrides) -> keras.Model:
    spec = get_spec(name)
    return spec.builder(input_shape=tuple(input_shape), **{**spec.defaults, **overrides})


def list_models(family: str | None = None, dataset: str | None = None) -> list[str]:
    return [name for name, spec in _REGISTRY.items()
            if (family is None or spec.family == family) and (dataset is None or spec.dataset == dataset)]
