"""Data-parallel scaling on this machine: training images/s with 1 and with several workers.

    python -m deblurlab.perf.scaling                    # 1x1, 1x2 and 2x1 (workers x threads)
    python -m deblurlab.perf.scaling --plans 1x1,2x1 --backends tensorflow,jax --note "idle"

Each plan starts its workers with ``deblurlab.runtime.launch`` (loopback, free ports, each worker
held to its threads and, where there are enough cores, pinned to its own), and they train one model
through ``train.train`` on synthetic CIFAR-sized images at one global batch; epoch 1 (compilation)
is left out and images/s is the global batch x steps / the median later epoch's seconds (the chief's
history). The record keeps the machine, its core count, the load average before and after, and
``--note`` (e.g. what else ran), since a busy machine slows every plan unevenly.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RECORD = Path(__file__).resolve().parents[1] / "records" / "scaling.json"
RUN = "scaling"
METHOD = (
    "images/s = global batch x steps per epoch / median seconds of epochs 2.. (epoch 1 compiles), "
    "from the chief's history of train.train (each epoch's time includes one validation batch); "
    "workers started by deblurlab.runtime.launch with their compute threads limited (and pinned to "
    "cores of their own where there are enough); synthetic 32x32 images blurred by the training "
    "stream"
)


def parse_plans(text: str) -> list[tuple[int, int]]:
    """``"1x1,2x1"`` -> [(1, 1), (2, 1)]: workers x compute threads per worker."""
    plans = []
    for item in text.split(","):
        workers, _, threads = item.strip().partition("x")
        if not (workers.isdigit() and threads.isdigit()) or "0" in (workers, threads):
            raise ValueError(f"plan {item!r}: write WORKERSxTHREADS, e.g. 2x1")
        plans.append((int(workers), int(threads)))
    return plans


def worker(model: str, batch: int, steps: int, epochs: int) -> None:
    """One worker's training (run by each launched process)."""
    from ..data.blur import make_blurred_set, training_stream
    from ..models import build_model
    from ..runtime import cluster, compute
    from ..training.profiles import TrainConfig
    from ..training.train import set_seeds, train

    cluster.initialize()
    rng = np.random.default_rng(0)
    sharp = rng.random((steps * batch, 32, 32, 3), dtype=np.float32)
    val = make_blurred_set(sharp[:batch], seed=1)[0], sharp[:batch]
    config = TrainConfig(epochs=epochs, batch_size=batch, patience=epochs + 1, seed=0)
    setup = compute.current(model)
    with setup.scope():
        set_seeds(0)
        net = build_model(model, input_shape=(32, 32, 3))
        stream = lambda a, b: training_stream(sharp, batch, 0, a, b)  # noqa: E731
        train(net, stream, val, RUN, config, verbose=False, setup=setup)


def measure(plan, backend: str, model: str, batch: int, steps: int, epochs: int, timeout: float):
    """Train with ``plan`` (workers, threads) on ``backend``; returns the run's figures."""
    from ..runtime import launch

    workers, threads = plan
    with tempfile.TemporaryDirectory(prefix="deblurlab-scaling-") as folder:
        env = {
            "DEBLURLAB_OUTPUT_DIR": folder,
            "KERAS_BACKEND": backend,
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }
        command = [sys.executable, "-m", "deblurlab.perf.scaling", "--worker"]
        command += ["--model", model, "--batch", str(batch), "--steps", str(steps)]
        command += ["--epochs", str(epochs)]
        began = time.monotonic()
        started = launch.start(command, workers, env, threads=threads, echo=False)
        launch.watch(started, timeout=timeout)
        if any(w.process.returncode != 0 for w in started):
            tail = "\n".join(list(started[0].lines)[-20:])
            raise RuntimeError(
                f"{workers}x{threads} on {backend}: {launch.report(started)}\n{tail}"
            )
        state = json.loads((Path(folder) / "runs" / RUN / "state.json").read_text())
    seconds = [row["seconds"] for row in state["history"]][1:]
    return {
        "backend": backend,
        "workers": workers,
        "threads_per_worker": threads,
        "global_batch": batch,
        "steps_per_epoch": steps,
        "epoch_seconds": seconds,
        "images_per_s": batch * steps / float(np.median(seconds)),
        "wall_seconds": time.monotonic() - began,
        "compute": state["compute"]["description"],
    }


def _rate(record: dict, backend: str, workers: int, threads: int) -> float | None:
    found = [
        r["images_per_s"]
        for r in record["runs"]
        if (r["backend"], r["workers"], r["threads_per_worker"]) == (backend, workers, threads)
    ]
    return found[0] if found else None


def summary(record: dict) -> str:
    """The record in a few lines: images/s per plan, against one worker of one thread and against
    one worker with as many threads as the plan's workers have together."""
    lines = [
        f"scaling measured {record['date']} on {record['machine']} ({record['cores']} cores; "
        f"load {record['load_before']} before, {record['load_after']} after; {record['note']}):"
    ]
    for run in record["runs"]:
        backend, workers, threads = run["backend"], run["workers"], run["threads_per_worker"]
        rate = run["images_per_s"]
        ratios = []
        for base_threads in sorted({1, workers * threads}):
            base = _rate(record, backend, 1, base_threads)
            if base and (workers, threads) != (1, base_threads):
                ratios.append(f"{rate / base:.2f}x 1 worker x {base_threads} thread(s)")
        extra = f" ({'; '.join(ratios)})" if ratios else ""
        lines.append(
            f"  {backend}: {workers} worker{'s' if workers > 1 else ''} x {threads} "
            f"thread{'s' if threads > 1 else ''}: {rate:.1f} images/s{extra}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    """The command line (see the module docstring)."""
    from ..runtime.provenance import git_commit, machine, today

    parser = argparse.ArgumentParser(prog="python -m deblurlab.perf.scaling", description=__doc__)
    parser.add_argument("--plans", default="1x1,1x2,2x1", help="WORKERSxTHREADS, comma-separated")
    parser.add_argument("--backends", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--model", default="resunet1")
    parser.add_argument("--batch", type=int, default=32, help="global batch (the profiles')")
    parser.add_argument("--steps", type=int, default=16, help="steps per epoch")
    parser.add_argument("--epochs", type=int, default=4, help="epoch 1 compiles and is left out")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per plan")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--out", type=Path, default=RECORD)
    parser.add_argument("--show", action="store_true", help="print the kept record's summary")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.show:
        print(summary(json.loads(args.out.read_text())))
        return 0
    if args.worker:
        worker(args.model, args.batch, args.steps, args.epochs)
        return 0
    plans = parse_plans(args.plans)
    load_before = [round(x, 2) for x in os.getloadavg()]
    runs = [
        measure(
            plan, backend.strip(), args.model, args.batch, args.steps, args.epochs, args.timeout
        )
        for backend in args.backends.split(",")
        for plan in plans
    ]
    record = {
        "machine": machine(),
        "cores": len(os.sched_getaffinity(0)),
        "load_before": load_before,
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "note": args.note or "no note",
        "commit": git_commit(),
        "date": today(),
        "model": args.model,
        "method": METHOD,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(summary(record))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
