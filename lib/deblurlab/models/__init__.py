"""Model registry. Importing this package registers every architecture file."""
from .registry import ModelSpec, build_model, get_spec, list_models, register
from . import caessc, eddensenet, resunet, srndeblur  # noqa: F401  (registers its variants)

__all__ = ["ModelSpec", "build_model", "get_spec", "list_models", "register"]
