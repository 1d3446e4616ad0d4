"""What a benchmark child process runs (``python -m deblurlab.perf --worker``, started by
``child.run_model``): the benchmark, the tuning pass or an engine worker of one model."""

from __future__ import annotations


def worker(settings: dict) -> dict:
    """What a child runs: the benchmark or the tuning pass of ``settings["name"]``."""
    settings = dict(settings)
    mode = settings.pop("mode", "bench")
    if mode in ("export", "frame"):
        from . import engines

        return (engines.export_worker if mode == "export" else engines.frame_worker)(settings)
    if mode == "tune":
        from .tuning import tune_model as fn
    else:
        from .timing import bench_model as fn
    return fn(settings.pop("name"), **settings)
