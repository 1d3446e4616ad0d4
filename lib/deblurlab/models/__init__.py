"""Model registry. Importing this package imports every architecture file in it, which registers
its variants with ``@register``: adding a model is adding one file here, with no import list to
edit.

Every module of this package is an architecture file except the helpers in ``HELPERS`` and any
module whose name starts with an underscore (put a new shared building block in one of those).
Modules are imported in name order (``pkgutil.iter_modules``), so ``list_models()`` lists the
models in that order, each file's in the order it registers them.
"""

import importlib
import pkgutil

from .registry import ModelSpec, build_model, get_spec, list_models, register, unregister

HELPERS = frozenset(
    {"registry", "layers", "convlstm", "scale_network"}
)  # building blocks, not architectures


def architecture_modules() -> list[str]:
    """The names of this package's architecture files, in import order."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if info.name not in HELPERS and not info.name.startswith("_")
    )


def _import_architectures() -> None:
    for module in architecture_modules():
        importlib.import_module(f"{__name__}.{module}")


_import_architectures()

__all__ = [
    "HELPERS",
    "ModelSpec",
    "architecture_modules",
    "build_model",
    "get_spec",
    "list_models",
    "register",
    "unregister",
]
