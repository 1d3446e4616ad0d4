"""Start several workers of one command on this machine, and watch them.

    python -m deblurlab.runtime.launch --workers 2 -- python -m deblurlab.reference --profile smoke
    python -m deblurlab.runtime.launch --workers 2 --threads 1 --timeout 600 -- COMMAND ...

Each worker gets the cluster variables of ``deblurlab.runtime.cluster`` (``TF_CONFIG`` and
``KERAS_DISTRIBUTION_*``) for 127.0.0.1 and ports free when it starts, and, with ``--threads``,
that many compute threads on cores of its own where there are enough. Their output is printed a
line at a time after ``[wN]``. When a worker fails, the others have ``--grace`` seconds to end by
themselves (the engine notices the lost worker), then are stopped; the report says which worker
failed first and how to resume. The exit status is 0 when every worker succeeded.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from .cluster import local_cluster

GRACE = 60.0  # seconds the other workers have to end by themselves after one failed


def thread_env(threads: int) -> dict[str, str]:
    """Variables that hold numpy, TensorFlow and XLA (JAX) to ``threads`` compute threads."""
    t = str(threads)
    eigen = "false" if threads == 1 else "true"
    return {
        "OMP_NUM_THREADS": t,
        "TF_NUM_INTRAOP_THREADS": t,
        "TF_NUM_INTEROP_THREADS": t,
        "XLA_FLAGS": f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={t}",
    }


@dataclass
class Worker:
    """One started worker: its process, and the last lines of its output."""

    index: int
    process: subprocess.Popen
    lines: collections.deque = field(default_factory=lambda: collections.deque(maxlen=400))
    ended_at: float | None = None
    stopped: bool = False  # ended by the launcher, not by itself
    reader: threading.Thread | None = None

    def read(self, echo: bool) -> None:
        """Keep (and with ``echo`` print) each line of the worker's output."""
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if echo:
                print(f"[w{self.index}] {line}", end="", flush=True)

    def stop(self) -> None:
        """End the worker and its children: SIGTERM, then SIGKILL after 5 s."""
        if self.process.poll() is not None:
            return
        self.stopped = True
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


def start(
    command: list[str],
    count: int,
    env: dict | None = None,
    threads: int | None = None,
    echo: bool = True,
) -> list[Worker]:
    """Start ``count`` workers of ``command`` on 127.0.0.1 (free ports), each in a session of its
    own; ``env`` adds variables, ``threads`` limits (and, on enough cores, pins) each worker."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = threads is not None and count * threads <= len(cores)
    workers = []
    for member in local_cluster(count):
        variables = {**os.environ, **(env or {}), **member.env(), "PYTHONUNBUFFERED": "1"}
        if threads is not None:
            variables.update(thread_env(threads))
        mine = cores[member.index * threads : (member.index + 1) * threads] if pin else None
        process = subprocess.Popen(
            command,
            env=variables,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
            preexec_fn=(lambda cpus=mine: os.sched_setaffinity(0, cpus)) if mine else None,
        )
        worker = Worker(member.index, process)
        worker.reader = threading.Thread(target=worker.read, args=(echo,), daemon=True)
        worker.reader.start()
        workers.append(worker)
    return workers


def watch(workers: list[Worker], timeout: float | None = None, grace: float = GRACE) -> None:
    """Wait until every worker has ended; ``grace`` seconds after the first failure, or at
    ``timeout`` seconds, stop those still running."""
    began = time.monotonic()
    failed_at = None
    while True:
        now = time.monotonic()
        for w in workers:
            if w.ended_at is None and w.process.poll() is not None:
                w.ended_at = now
                if w.process.returncode != 0 and failed_at is None:
                    failed_at = now
        if all(w.ended_at is not None for w in workers):
            break
        late = timeout is not None and now - began > timeout
        if late or (failed_at is not None and now - failed_at > grace):
            for w in workers:
                w.stop()
            continue
        time.sleep(0.2)
    for w in workers:
        if w.reader is not None:
            w.reader.join(timeout=10)


def how_ended(worker: Worker) -> str:
    """``exit status N``, ``killed by SIGNAME``, or that the launcher stopped it."""
    code = worker.process.returncode
    if worker.stopped:
        return "stopped by the launcher"
    if code is not None and code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def report(workers: list[Worker]) -> str:
    """What happened: every worker's end, the first failure's last output, and what to do."""
    failed = sorted(
        (w for w in workers if w.process.returncode != 0), key=lambda w: w.ended_at or 0.0
    )
    if not failed:
        return f"all {len(workers)} workers finished"
    first = failed[0]
    lines = [f"worker {first.index} failed first ({how_ended(first)})."]
    lines += [f"worker {w.index}: {how_ended(w)}" for w in workers if w is not first]
    said = [line for w in failed for line in list(w.lines)[-3:] if line.strip()]
    lines += [f"  last output: {line}" for line in said[-6:]]
    lines.append(
        "The run stopped. Start the same command again: training resumes from the chief's last "
        "checkpoint (runs/<run>/state.json)."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m deblurlab.runtime.launch", description=__doc__)
    parser.add_argument("--workers", type=int, required=True, help="how many workers")
    parser.add_argument("--threads", type=int, default=None, help="compute threads per worker")
    parser.add_argument("--timeout", type=float, default=None, help="stop every worker after S s")
    parser.add_argument("--grace", type=float, default=GRACE, help="see above (seconds)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND ...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command or args.workers < 1:
        parser.error("give --workers N (1 or more) and a command after --")
    workers = start(command, args.workers, threads=args.threads)
    try:
        watch(workers, args.timeout, args.grace)
    except KeyboardInterrupt:
        for w in workers:
            w.stop()
    print(report(workers), file=sys.stderr)
    codes = [w.process.returncode for w in workers]
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
