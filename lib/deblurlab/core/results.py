"""Results on disk: one JSON encoder, one atomic writer, and the per-image arrays.

    write_results("resunet", payload)     # report/results/resunet.json, written atomically
    read_results("resunet")               # the payload back, or None
    write_arrays("resunet", {"resunet1|mse": values, "sigma": sigmas})
    read_arrays("resunet")                # report/results/per_image/resunet.npz, or None

``Evaluation`` is what both studies' ``evaluate`` returns: per-method, per-metric, per-image
scores, the blurred input first. It reads as that mapping (``evaluation["resunet1"]["psnr"]``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .paths import results_dir

BLURRED_INPUT = "blurred input"  # the row of the unrestored input in every study's scores
REFERENCE_SUFFIX = " (reference run)"  # a row of shipped weights (zoo/), not of this run
PER_IMAGE_DIR = "per_image"  # report/results/per_image/<name>.npz


# --------------------------------------------------------------------------------------- encoding


def jsonable(value):
    """``value`` as plain JSON types: numpy scalars and arrays, pandas objects, paths, sets and
    dataclasses converted; NaN and infinities become None. Anything else unknown becomes str."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, np.bool_):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {_key(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Path):
        return str(value)
    return _pandas(value)


def _key(key):
    """A dict key JSON accepts (str, int, float, bool or None), else its str."""
    if isinstance(key, (np.integer, np.floating, np.bool_)):
        key = key.item()
    return key if key is None or isinstance(key, (str, int, float, bool)) else str(key)


def _pandas(value):
    import pandas as pd

    if isinstance(value, pd.DataFrame):
        return jsonable(value.to_dict(orient="records"))
    if isinstance(value, (pd.Series, pd.Index)):
        return jsonable(value.tolist() if isinstance(value, pd.Index) else value.to_dict())
    if isinstance(value, pd.Timestamp):
        return None if pd.isna(value) else value.isoformat()
    try:
        if pd.isna(value):  # pd.NA, pd.NaT
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def dumps(payload) -> str:
    """The one JSON text the results use (indent 1, UTF-8 kept, no NaN)."""
    return json.dumps(jsonable(payload), indent=1, ensure_ascii=False, allow_nan=False)


# ----------------------------------------------------------------------------------------- files


def _atomic(path: Path, write) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide results from other users
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically. Returns the path."""
    return _atomic(Path(path), lambda handle: handle.write(text.encode("utf-8")))


def write_json(path, payload) -> Path:
    """``payload`` encoded by ``dumps``, written atomically to ``path``. Returns the path."""
    return write_text(path, dumps(payload))


def results_path(name: str) -> Path:
    """The JSON file of chapter ``name``'s results."""
    return results_dir() / f"{name}.json"


def write_results(name: str, payload: dict) -> Path:
    """Write report/results/<name>.json atomically. Returns its path."""
    return write_json(results_path(name), payload)


def read_results(name: str) -> dict | None:
    """The payload of report/results/<name>.json, or None if it was never written."""
    path = results_path(name)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def arrays_path(name: str) -> Path:
    """The ``.npz`` file of chapter ``name``'s per-image scores."""
    return results_dir() / PER_IMAGE_DIR / f"{name}.npz"


def write_arrays(name: str, arrays: Mapping[str, np.ndarray]) -> Path:
    """Write ``arrays`` to report/results/per_image/<name>.npz atomically. Returns its path."""
    values = {key: np.asarray(v) for key, v in arrays.items()}
    return _atomic(arrays_path(name), lambda handle: np.savez(handle, **values))


def read_arrays(name: str) -> dict[str, np.ndarray] | None:
    """The arrays saved by ``write_arrays(name, ...)``, or None if there are none."""
    path = arrays_path(name)
    if not path.exists():
        return None
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}


def write_study_table(study, name: str, table, note: str = "") -> str:
    """Write ``table`` (a DataFrame) as report/tables/<name> with the footnote of ``study`` (any
    object with a ``provenance`` dict, or that dict) and ``note`` after it. Returns the markdown."""
    from .tables import footnote, write_table

    prov = study if isinstance(study, Mapping) else study.provenance
    return write_table(name, table, " ".join(filter(None, [footnote(prov), note])))


# ------------------------------------------------------------------------------- the evaluation

Scores = dict[str, dict[str, np.ndarray]]


@dataclass
class Evaluation(MutableMapping):
    """A study's evaluation: ``scores[method][metric]`` holds one value per test image, the
    blurred input first. ``names`` names the images (frames) where they have names;
    ``hardest``/``hardest_name`` keep the hardest image's outputs for figures; ``seconds_per_image``
    is the mean inference time where measured; ``call_seconds[method]`` the seconds of each of its
    calls, one an image in ``names``' order, and ``sizes`` each image's (height, width), where
    measured. Reads (and updates) as the ``scores`` mapping."""

    scores: Scores
    names: list[str] = field(default_factory=list)
    hardest: dict[str, np.ndarray] = field(default_factory=dict)
    hardest_name: str = ""
    seconds_per_image: float | None = None
    call_seconds: dict[str, list[float]] = field(default_factory=dict)
    sizes: list[tuple[int, int]] = field(default_factory=list)

    def __getitem__(self, method: str) -> dict[str, np.ndarray]:
        return self.scores[method]

    def __setitem__(self, method: str, per_image: dict[str, np.ndarray]) -> None:
        self.scores[method] = per_image

    def __delitem__(self, method: str) -> None:
        del self.scores[method]

    def __iter__(self) -> Iterator[str]:
        return iter(self.scores)

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def methods(self) -> list[str]:
        """The rows other than the blurred input."""
        return [m for m in self.scores if m != BLURRED_INPUT]

    @property
    def seconds_per_frame(self) -> float | None:
        """``seconds_per_image`` under the motion chapter's name."""
        return self.seconds_per_image

    def score_arrays(self, prefix: str = "") -> dict[str, np.ndarray]:
        """The scores as flat arrays keyed ``"<prefix><method>|<metric>"`` (for
        ``write_arrays``)."""
        return {
            f"{prefix}{method}|{metric}": np.asarray(values, np.float64)
            for method, per_image in self.scores.items()
            for metric, values in per_image.items()
        }


def split_scores(arrays: Mapping[str, np.ndarray]) -> Scores:
    """The inverse of ``Evaluation.score_arrays``: ``{method: {metric: values}}`` from the keys
    that hold a ``|``; other arrays are ignored."""
    scores: Scores = {}
    for key, values in arrays.items():
        if "|" in key:
            method, metric = key.split("|", 1)
            scores.setdefault(method, {})[metric] = np.asarray(values, np.float64)
    return scores
