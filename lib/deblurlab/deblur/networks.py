"""The models that ``python -m deblurlab.deblur`` runs: a registered model with the zoo's weights or
a ``.weights.h5`` file's, checked against its architecture, and the error that names the fix.
"""

from __future__ import annotations

from pathlib import Path

from ..core.paths import REPO_ROOT, output_root
from ..training import zoo
from ..training.inference import any_size, fixed_overlap, input_size, network_multiple

DEFAULT_MODEL = "srndeblur_reds"  # the motion-blur model: what deblur runs without --model


class DeblurError(RuntimeError):
    """A model, weights file or image cannot be used; the message names it and the fix."""


def _spec(name: str):
    from ..models import get_spec

    try:
        return get_spec(name)
    except KeyError as exc:
        raise DeblurError(exc.args[0]) from None


def show_path(path) -> str:
    """``path`` relative to the checkout when inside it (``zoo/resunet1.weights.h5``), whether or
    not it exists."""
    path = Path(path)
    return (
        str(path.relative_to(REPO_ROOT))
        if path.is_absolute() and path.is_relative_to(REPO_ROOT)
        else str(path)
    )


def _missing_weights_message(name: str) -> str:
    spec = _spec(name)
    path = show_path(zoo.weights_path(name))
    runs = sorted((output_root() / "runs").glob(f"*-{name}-*/best.weights.h5"))
    found = ("; training runs found here: " + ", ".join(show_path(p) for p in runs)) if runs else ""
    if spec.dataset == "cifar10":
        train = (
            f"Train it with `python -m deblurlab.reference --models {name}` "
            f"(its weights then go to the "
            f"zoo), or pass --weights runs/<run>/best.weights.h5 from a training run"
        )
    else:
        train = (
            f"Train it with `python -m deblurlab.reference --models {name}` (its weights then go "
            "to the zoo; --motion-dir names the REDS or GoPro folder), or pass --weights "
            "runs/<run>/best.weights.h5 of a chapter 05 run "
            "(`python -m deblurlab.run notebooks/05_srndeblur_reds.ipynb`)"
        )
    return (
        f"no weights for {name}: {path} is missing (no reference run of {name} is shipped). "
        f"{train}{found}."
    )


def _file_weights(path: Path) -> tuple[bool, list[tuple[int, ...]]]:
    """(zoo format?, shapes of the model weights the HDF5 file holds). A Keras file keeps them under
    ``layers/`` and ``vars/`` (a training run's file also holds ``optimizer/``, not counted)."""
    import h5py

    shapes = []
    with h5py.File(path, "r") as handle:
        zoo_format = handle.attrs.get("format") == "deblurlab-zoo-1"
        groups = [handle] if zoo_format else [handle[k] for k in ("layers", "vars") if k in handle]
        for group in groups:
            group.visititems(
                lambda _, item: (
                    shapes.append(tuple(item.shape)) if isinstance(item, h5py.Dataset) else None
                )
            )
    return zoo_format, shapes


def _load_weights_file(name: str, path):
    import warnings

    path = Path(path).expanduser()
    if not path.is_file():
        raise DeblurError(
            f"{path} does not exist: pass a .weights.h5 file, e.g. runs/<run>/best.weights.h5 "
            f"of a training run of {name}, or leave --weights out to use the zoo's."
        )
    try:
        zoo_format, shapes = _file_weights(path)
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError and others for non-HDF5 files
        raise DeblurError(
            f"{path} is not a weights file ({type(exc).__name__}: {exc}): pass a .weights.h5 "
            "file written by Keras save_weights (a run's best.weights.h5) or by the zoo."
        ) from exc
    model = _build(name)
    built = [tuple(s) for s in zoo.weight_shapes(model)]
    if sorted(shapes) != sorted(built):
        raise DeblurError(
            f"{path} does not fit {name}: it holds {len(shapes)} weight arrays, {name} has "
            f"{len(built)}{' of other shapes' if len(shapes) == len(built) else ''}. Pass the "
            "--model these weights were trained for."
        )
    if not zoo_format and not path.name.endswith(".weights.h5"):
        raise DeblurError(
            f"{path}: Keras reads weights only from files named *.weights.h5; rename it."
        )
    try:
        if zoo_format:
            zoo.assign_weights(model, zoo.read_weights(path), path)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter(
                    "ignore"
                )  # Keras warns per layer before it raises on a mismatch
                model.load_weights(path)
    except Exception as exc:  # noqa: BLE001 - Keras raises ValueError and others on a mismatch
        message = str(exc).splitlines()[0][:300]
        raise DeblurError(
            f"{path} does not fit {name} ({type(exc).__name__}: {message}). Pass the "
            "--model these weights were trained for."
        ) from exc
    return model


def _build(name: str):
    """``name`` built for any input size, or at its training size where its weights depend on it."""
    from ..models import build_model

    try:
        return build_model(name, input_shape=(None, None, 3))
    except ValueError:
        return build_model(name, input_shape=(32, 32, 3))


def load_model(name: str, weights=None):
    """The registered model ``name`` with the zoo's weights (sha256 checked) or those of the
    ``weights`` file (``.weights.h5``, Keras or zoo format), built for any input size where the
    architecture allows it. Raises ``DeblurError`` naming the missing file and the command that
    trains it."""
    _spec(name)
    if weights is not None:
        return _load_weights_file(name, weights)
    if not zoo.record_path(name).exists() and not zoo.weights_path(name).exists():
        raise DeblurError(_missing_weights_message(name))
    try:
        return any_size(zoo.load(name), name)
    except zoo.ZooError as exc:
        raise DeblurError(str(exc)) from None


def zoo_note(name: str) -> str:
    """A note on the zoo's weights of ``name`` when its record says the run is unfinished (a
    reference run cut by its time limit), else ""."""
    if name not in zoo.available():
        return ""
    record = zoo.read_record(name)
    if not zoo.in_progress(record):
        return ""
    return (
        f"; note: these are the weights of an unfinished reference run ({record.get('epochs', '?')}"
        f" epochs, {record.get('date', '?')})"
    )


def describe(model) -> str:
    """One line: how ``model`` will be run."""
    from ..models import list_models

    h, w = input_size(model)
    size = (
        "any size"
        if (h, w) == (None, None)
        else f"{w}x{h} tiles only, its training size "
        f"(neighbouring tiles share {2 * fixed_overlap(h)} px)"
    )
    note = ""
    if model.name in list_models() and _spec(model.name).dataset == "cifar10":
        note = (
            f"; note: {model.name} was trained on 32x32 CIFAR-10 thumbnails with gaussian blur, "
            "not on motion blur"
        )
    return (
        f"{model.name} ({model.count_params():,} parameters): runs on {size}, "
        f"padded to a multiple of "
        f"{network_multiple(model)}{note}"
    )
