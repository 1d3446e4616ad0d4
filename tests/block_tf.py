"""Simulates a virtual environment without TensorFlow: with ``DEBLURLAB_BLOCK_TF=1``, ``install()``
makes every ``import tensorflow`` (and its submodules) raise ModuleNotFoundError.

conftest.py installs it for the test session (``make test``'s JAX subset sets the variable); a
test's subprocess calls ``install()`` itself (put tests/ on its PYTHONPATH). ``block(*names)`` does
the same for any packages (the ONNX engine's test blocks TensorFlow, Keras and JAX together).
"""

import importlib.abc
import os
import sys

ENV_VAR = "DEBLURLAB_BLOCK_TF"


class BlockTensorFlow(importlib.abc.MetaPathFinder):
    """A meta-path finder that refuses ``tensorflow`` and ``tensorflow.*``."""

    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ModuleNotFoundError(
                f"No module named {name!r} ({ENV_VAR}=1: TensorFlow is blocked)", name=name
            )
        return None


def install(force: bool = False) -> bool:
    """Block TensorFlow if ``$DEBLURLAB_BLOCK_TF`` is 1 (or ``force``); returns whether it is."""
    if not (force or os.environ.get(ENV_VAR) == "1"):
        return False
    if "tensorflow" in sys.modules:
        raise RuntimeError(f"{ENV_VAR}=1 but TensorFlow is imported already")
    if not any(isinstance(f, BlockTensorFlow) for f in sys.meta_path):
        sys.meta_path.insert(0, BlockTensorFlow())
    return True


class BlockModules(importlib.abc.MetaPathFinder):
    """A meta-path finder that refuses the given top-level packages and their submodules."""

    def __init__(self, names):
        self.names = tuple(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None


def block(*names: str) -> None:
    """Make every import of ``names`` (and their submodules) raise ModuleNotFoundError, as in an
    environment without them; raises RuntimeError when one is imported already."""
    imported = [n for n in names if n in sys.modules]
    if imported:
        raise RuntimeError(f"cannot block {imported}: imported already")
    sys.meta_path.insert(0, BlockModules(names))
