"""Data-parallel training over several processes (one worker each, on one machine or many).

Each worker runs the same command; the environment says which worker it is, in either engine's
own words (a launcher such as ``tools/slurm_train.sh`` or ``python -m deblurlab.runtime.launch``
sets both):

- ``TF_CONFIG``: TensorFlow's JSON, ``{"cluster": {"worker": ["host:port", ...]},
  "task": {"type": "worker", "index": i}}`` (a ``"chief"`` job, if any, counts as worker 0);
- ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the addresses, or only worker 0's),
  ``KERAS_DISTRIBUTION_NUM_PROCESSES`` and ``KERAS_DISTRIBUTION_PROCESS_ID``: the variables of
  ``keras.distribution.initialize``.

``initialize()`` reads them once and starts the engine: on TensorFlow a
``tf.distribute.MultiWorkerMirroredStrategy`` (its collectives sum the gradients); on JAX
``jax.distributed.initialize`` (what ``keras.distribution.initialize`` calls, here with the
timeouts it cannot pass: ``DEBLURLAB_START_TIMEOUT`` for every worker to join,
``DEBLURLAB_HEARTBEAT_TIMEOUT`` after which a silent worker counts as dead), then
``keras.distribution.DataParallel`` over every process's devices (``distribution()``). Worker 0 is
the chief: only it writes checkpoints, TensorBoard logs and the zoo. Without either variable, or
with one worker, nothing changes. What the workers do together while training (agree, read their
shards, report a lost worker) is in ``deblurlab.runtime.collectives``.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

START_TIMEOUT_ENV = "DEBLURLAB_START_TIMEOUT"  # seconds for every worker to join (JAX)
HEARTBEAT_ENV = "DEBLURLAB_HEARTBEAT_TIMEOUT"  # seconds of silence before a worker is dead (JAX)
START_TIMEOUT, HEARTBEAT_TIMEOUT = 300, 100  # JAX's own defaults
# Workers wait at exit for the chief, which exports to the zoo after training: allow it hours.
SHUTDOWN_TIMEOUT = 6 * 3600
KERAS_VARS = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


class ClusterError(RuntimeError):
    """A cluster set up wrongly, workers that disagree, or a worker lost during training."""


@dataclass(frozen=True)
class Cluster:
    """The workers of one training run and which of them this process is.

    ``addresses`` are the workers' ``host:port`` in worker order (on JAX only worker 0's, the
    coordinator, may be known); ``index`` is this worker, ``count`` how many there are."""

    addresses: tuple[str, ...] = ()
    index: int = 0
    count: int = 1
    source: str = "no cluster variables"

    @property
    def is_chief(self) -> bool:
        """Whether this worker writes the run's files (worker 0)."""
        return self.index == 0

    @property
    def multi(self) -> bool:
        """Whether there is more than one worker."""
        return self.count > 1

    def describe(self) -> str:
        """One line: this worker of how many, and where the set-up came from."""
        if not self.multi:
            return "one worker"
        role = "the chief" if self.is_chief else "not the chief"
        return f"worker {self.index} of {self.count} ({role}; from {self.source})"

    def tf_config(self) -> dict:
        """The ``TF_CONFIG`` of this worker (needs every worker's address)."""
        if len(self.addresses) != self.count:
            raise ClusterError(
                f"TensorFlow needs the address of each of the {self.count} workers, and "
                f"{self.source} gives {len(self.addresses)}: set TF_CONFIG, or every address in "
                "KERAS_DISTRIBUTION_JOB_ADDRESSES"
            )
        return {
            "cluster": {"worker": list(self.addresses)},
            "task": {"type": "worker", "index": self.index},
        }

    def env(self) -> dict[str, str]:
        """The variables that describe this worker to either engine (a launcher sets them)."""
        out = {
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": ",".join(self.addresses),
            "KERAS_DISTRIBUTION_NUM_PROCESSES": str(self.count),
            "KERAS_DISTRIBUTION_PROCESS_ID": str(self.index),
        }
        if len(self.addresses) == self.count:
            out["TF_CONFIG"] = json.dumps(self.tf_config())
        return out


def _address(text: str, source: str) -> str:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit():
        raise ClusterError(f"{source}: {text!r} is not host:port")
    return text.strip()


def _from_tf_config(text: str) -> Cluster:
    try:
        config = json.loads(text)
        jobs, task = config.get("cluster", {}), config.get("task", {})
        kind, index = task.get("type"), int(task.get("index", 0))
    except (ValueError, AttributeError, TypeError) as error:
        raise ClusterError(
            f"TF_CONFIG is not valid JSON of a cluster and a task: {error}"
        ) from None
    others = sorted(set(jobs) - {"chief", "worker"})
    if others:
        raise ClusterError(f"TF_CONFIG has {others} jobs: only chief and worker jobs train here")
    if kind not in ("chief", "worker"):
        raise ClusterError(f"TF_CONFIG's task type is {kind!r}, not 'worker' or 'chief'")
    order = list(jobs.get("chief", [])) + list(jobs.get("worker", []))
    position = index + (len(jobs.get("chief", [])) if kind == "worker" else 0)
    if not order or not 0 <= position < len(order):
        raise ClusterError(f"TF_CONFIG's task {kind} {index} is not in its cluster {jobs}")
    addresses = tuple(_address(a, "TF_CONFIG") for a in order)
    return Cluster(addresses, position, len(order), "TF_CONFIG")


def _from_keras_vars(env) -> Cluster:
    jobs, count, index = (env.get(name, "").strip() for name in KERAS_VARS)
    source = "KERAS_DISTRIBUTION_*"
    addresses = tuple(_address(a, KERAS_VARS[0]) for a in jobs.split(",") if a.strip())
    for name, value in zip(KERAS_VARS[1:], (count, index)):
        if value and not value.isdigit():
            raise ClusterError(f"{name}={value!r} is not a whole number")
    count = int(count) if count else len(addresses) or 1
    if count > 1 and (not addresses or not index):
        raise ClusterError(
            f"{count} processes need {KERAS_VARS[0]} (worker 0's host:port at least) and "
            f"{KERAS_VARS[2]} (this worker's number, 0 to {count - 1})"
        )
    index = int(index or 0)
    if len(addresses) > 1 and len(addresses) != count:
        raise ClusterError(f"{KERAS_VARS[0]} lists {len(addresses)} workers, but there are {count}")
    if not 0 <= index < count:
        raise ClusterError(f"{KERAS_VARS[2]}={index} is not one of 0..{count - 1}")
    return Cluster(addresses, index, count, source)


def from_env(env=None) -> Cluster:
    """The cluster the environment describes (``TF_CONFIG`` and/or ``KERAS_DISTRIBUTION_*``; both
    must then agree), or one worker."""
    env = os.environ if env is None else env
    found = []
    if env.get("TF_CONFIG", "").strip():
        found.append(_from_tf_config(env["TF_CONFIG"]))
    if any(env.get(name, "").strip() for name in KERAS_VARS):
        found.append(_from_keras_vars(env))
    if not found:
        return Cluster()
    if len(found) == 2:
        tf, ks = found
        if (tf.count, tf.index) != (ks.count, ks.index) or (
            ks.addresses and ks.addresses != tf.addresses[: len(ks.addresses)]
        ):
            raise ClusterError(
                f"TF_CONFIG ({tf.describe()}, {list(tf.addresses)}) and KERAS_DISTRIBUTION_* "
                f"({ks.describe()}, {list(ks.addresses)}) disagree: set one, or both alike"
            )
        return Cluster(tf.addresses, tf.index, tf.count, "TF_CONFIG and KERAS_DISTRIBUTION_*")
    return found[0]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` TCP ports free on ``host`` now (held together while chosen, so all differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_cluster(count: int, host: str = "127.0.0.1") -> list[Cluster]:
    """Every worker of a cluster of ``count`` processes on this machine, on free ports."""
    addresses = tuple(f"{host}:{port}" for port in free_ports(count, host))
    return [Cluster(addresses, i, count, "a local cluster") for i in range(count)]


def _seconds(env, name: str, default: int) -> int:
    value = env.get(name, "").strip()
    if value and not value.isdigit():
        raise ClusterError(f"{name}={value!r}: give whole seconds")
    return int(value) if value else default


_STARTED: dict = {}  # "cluster" and, on TensorFlow, "strategy": set once by initialize()


def initialize(env=None) -> Cluster:
    """Read the cluster from the environment and start the engine's multi-worker runtime (once;
    later calls return the same cluster). Call it first thing, before TensorFlow or JAX compute."""
    if "cluster" in _STARTED:
        return _STARTED["cluster"]
    env = os.environ if env is None else env
    cluster = from_env(env)
    if cluster.multi:
        from ..core.host import keras_backend

        backend = keras_backend()
        if backend == "tensorflow":
            _STARTED["strategy"] = _start_tensorflow(cluster)
        elif backend == "jax":
            _start_jax(cluster, env)
        else:
            raise ClusterError(f"multi-worker training needs TensorFlow or JAX, not {backend}")
    _STARTED["cluster"] = cluster
    return cluster


def current() -> Cluster:
    """The cluster this process belongs to (``initialize()`` on first use)."""
    return initialize()


def _start_tensorflow(cluster: Cluster):
    import tensorflow as tf

    from . import keras_mwms

    os.environ["TF_CONFIG"] = json.dumps(cluster.tf_config())  # the strategy reads it
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        raise ClusterError(
            f"TensorFlow could not join the cluster ({error}). The strategy must be made before "
            "TensorFlow first computes: call deblurlab.runtime.cluster.initialize() at the start "
            "of the program (python -m deblurlab.reference does)."
        ) from error
    keras_mwms.install()
    return strategy


def _start_jax(cluster: Cluster, env) -> None:
    import jax

    try:  # CPU collectives between processes; gloo is the default of recent JAX releases
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except (AttributeError, ValueError):
        pass
    try:
        jax.distributed.initialize(
            coordinator_address=cluster.addresses[0],
            num_processes=cluster.count,
            process_id=cluster.index,
            initialization_timeout=_seconds(env, START_TIMEOUT_ENV, START_TIMEOUT),
            heartbeat_timeout_seconds=_seconds(env, HEARTBEAT_ENV, HEARTBEAT_TIMEOUT),
            shutdown_timeout_seconds=SHUTDOWN_TIMEOUT,
        )
    except RuntimeError as error:
        raise ClusterError(
            f"JAX could not join the cluster as {cluster.describe()} ({error}). Call "
            "deblurlab.runtime.cluster.initialize() before JAX first computes, and start every "
            f"worker within {START_TIMEOUT_ENV} seconds of the first."
        ) from error


def strategy():
    """TensorFlow: the MultiWorkerMirroredStrategy of this cluster."""
    initialize()
    if "strategy" not in _STARTED:
        raise ClusterError("no multi-worker TensorFlow cluster was started in this process")
    return _STARTED["strategy"]


def distribution():
    """JAX: ``keras.distribution.DataParallel`` over every process's devices; each worker feeds
    its own rows of each batch (no auto-sharding)."""
    import keras

    initialize()
    devices = keras.distribution.list_devices()
    return keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)


def shell_exports(hosts: list[str], port: int, index: int) -> str:
    """``export`` lines that make this shell worker ``index`` of one worker a host, every worker
    listening on ``port`` (what tools/slurm_train.sh and tools/ssh_train.sh evaluate)."""
    import shlex

    addresses = tuple(f"{host}:{port}" for host in hosts)
    if not 0 <= index < len(addresses):
        raise ClusterError(f"worker index {index} is not one of 0..{len(addresses) - 1}")
    member = Cluster(addresses, index, len(addresses), "a launcher")
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in member.env().items())


def main(argv=None) -> int:
    """``python -m deblurlab.runtime.cluster --hosts a,b --port P --index I``: print
    ``shell_exports``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m deblurlab.runtime.cluster", description=__doc__
    )
    parser.add_argument("--hosts", required=True, help="every worker's host, worker 0 first")
    parser.add_argument("--port", type=int, required=True, help="the port each worker listens on")
    parser.add_argument("--index", type=int, required=True, help="this worker's number")
    args = parser.parse_args(argv)
    hosts = [h.strip() for h in args.hosts.replace("\n", ",").split(",") if h.strip()]
    print(shell_exports(hosts, args.port, args.index))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
