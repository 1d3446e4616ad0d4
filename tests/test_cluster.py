"""Multi-worker data-parallel training (deblurlab.runtime.cluster, deblurlab.runtime.launch).

The pure parts first (the environment's cluster, the streams' shards, the launcher's report), then
two worker processes on 127.0.0.1 (free ports, one thread each) that train a small model through
train.train on the backend of this test session (TensorFlow, or JAX in make test's JAX subset):
worker 1 is killed after the second epoch's checkpoint, the chief must end by itself with a clear
error, and a restart must resume from that checkpoint and end with both workers' weights identical
and equal to one process's run of the same global batch and seed within WEIGHT_TOLERANCE. Every
wait is bounded.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pytest

import deblurlab
from deblurlab.data.blur import training_stream
from deblurlab.data.frames import ArrayFrames
from deblurlab.data.patches import patch_stream
from deblurlab.data.stream import Stream, shard_rows
from deblurlab.runtime import cluster, collectives, compute, launch

WORKER = Path(__file__).with_name("cluster_worker.py")
EPOCHS, HOLD_EPOCH = 3, 1  # worker 1 holds after the 2nd of 3 epochs (counted from 0)
# Largest weight difference allowed between two workers' run and one process's: the same maths,
# the batch's loss summed in another order. Half a batch on each worker (a sharding bug) moves
# the weights by about the learning rate (1e-3) within the run's 12 steps.
WEIGHT_TOLERANCE = 1e-6
START, END = 120.0, 90.0  # seconds: for the held checkpoint, then for the workers to end


# --- the environment's cluster ---------------------------------------------------------------


def test_tf_config_and_keras_variables_describe_the_same_cluster():
    tf_config = {
        "cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]},
        "task": {"type": "worker", "index": 1},
    }
    found = cluster.from_env({"TF_CONFIG": json.dumps(tf_config)})
    assert (found.addresses, found.index, found.count) == (("a:1", "b:2", "c:3"), 2, 3)
    assert not found.is_chief and found.multi
    keras_vars = {
        "KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1",
        "KERAS_DISTRIBUTION_NUM_PROCESSES": "3",
        "KERAS_DISTRIBUTION_PROCESS_ID": "2",
    }
    only_keras = cluster.from_env(keras_vars)
    assert (only_keras.addresses, only_keras.index, only_keras.count) == (("a:1",), 2, 3)
    with pytest.raises(cluster.ClusterError, match="address of each of the 3 workers"):
        only_keras.tf_config()
    both = cluster.from_env({"TF_CONFIG": json.dumps(tf_config), **keras_vars})
    assert both.addresses == found.addresses and both.index == 2
    with pytest.raises(cluster.ClusterError, match="disagree"):
        cluster.from_env(
            {"TF_CONFIG": json.dumps(tf_config), **keras_vars, "KERAS_DISTRIBUTION_PROCESS_ID": "1"}
        )
    assert not cluster.from_env({}).multi and cluster.from_env({}).is_chief


@pytest.mark.parametrize(
    "env, match",
    [
        ({"TF_CONFIG": "{not json"}, "not valid JSON"),
        ({"TF_CONFIG": json.dumps({"cluster": {"ps": ["a:1"]}, "task": {"type": "ps"}})}, "ps"),
        ({"TF_CONFIG": json.dumps({"cluster": {"worker": ["a:1"]}, "task": {}})}, "type is None"),
        (
            {
                "TF_CONFIG": json.dumps(
                    {"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}
                )
            },
            "task worker 3 is not in",
        ),
        ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "2"}, "KERAS_DISTRIBUTION_PROCESS_ID"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1,b", "KERAS_DISTRIBUTION_PROCESS_ID": "0"}, "b"),
    ],
)
def test_a_wrong_cluster_environment_is_refused_with_its_cause(env, match):
    with pytest.raises(cluster.ClusterError, match=match):
        cluster.from_env(env)


def test_a_local_cluster_round_trips_through_its_environment():
    members = cluster.local_cluster(3)
    assert len(set(members[0].addresses)) == 3
    assert all(a.startswith("127.0.0.1:") for a in members[0].addresses)
    assert [cluster.from_env(m.env()) for m in members] == [
        cluster.Cluster(m.addresses, m.index, 3, "TF_CONFIG and KERAS_DISTRIBUTION_*")
        for m in members
    ]


def test_the_set_up_of_a_worker_names_the_strategy():
    untuned = dict(env={}, model_name="resunet1", key="k", records={}, workers=2)  # any machine
    tf = compute.choose(0, backend="tensorflow", **untuned)
    jx = compute.choose(0, backend="jax", **untuned)
    assert tf.distribute and tf.describe().endswith("MultiWorkerMirroredStrategy over 2 workers")
    assert jx.describe().endswith("DataParallel over 2 workers")
    assert tf.arithmetic() == "float32 on CPU x 2 workers"
    assert tf.local().workers == 1 and not tf.local().distribute
    # a model whose tuning record gains from XLA: off across TensorFlow CPU workers only
    records = {"k": {"tuning": {"summary": {"m": {"jit_compile": {"train_ratio": 2.0}}}}}}
    xla = dict(env={}, model_name="m", key="k", records=records, backend="tensorflow")
    assert compute.choose(0, **xla).jit_compile is True
    assert compute.choose(0, **xla, workers=2).jit_compile is False
    assert "no collectives between CPU workers" in compute.choose(0, **xla, workers=2).source


def test_disagreeing_workers_and_a_lost_worker_are_named(monkeypatch):
    rows = np.array([[5, 2], [5, 0]])  # what gather_ints would return: worker 1 starts afresh
    monkeypatch.setattr(collectives, "gather_ints", lambda values: rows)
    with pytest.raises(cluster.ClusterError, match=r"disagree on the run.*\[\[5, 2\], \[5, 0\]\]"):
        collectives.check_same("the run", [5, 2])
    assert collectives.any_worker(False)  # worker 0's flag is set
    assert collectives.lost_worker(RuntimeError("Unavailable"), "x") is None  # one worker
    monkeypatch.setattr(collectives, "current", lambda: cluster.Cluster(("a:1", "b:2"), 1, 2))
    lost = collectives.lost_worker(RuntimeError("UNAVAILABLE: Connection reset\nmore"), "here")
    assert "worker 1 of 2: training stopped because another worker" in str(lost)
    assert "resumes from here" in str(lost)
    assert collectives.lost_worker(ValueError("shapes differ"), "here") is None


# --- shards of the deterministic streams ------------------------------------------------------


def test_shard_rows_split_a_batch_into_equal_ranges_or_refuse():
    assert [shard_rows(8, k, 4) for k in range(4)] == [slice(2 * k, 2 * k + 2) for k in range(4)]
    with pytest.raises(ValueError, match="batch of 10 does not split over 4 workers"):
        shard_rows(10, 0, 4)
    with pytest.raises(ValueError, match="worker index 2"):
        shard_rows(8, 2, 2)


def _joined(parts, i):
    return [np.concatenate([p[i][k] for p in parts]) for k in range(2)]


def test_the_workers_shards_put_together_are_the_stream():
    sharp = np.random.default_rng(0).random((24, 8, 8, 3)).astype("float32")
    stream, _ = training_stream(sharp, 8, 0, 1, 2)
    plain = Stream(len(stream), stream.steps, stream.make_batch)  # no rows: shards cut from batches
    double = lambda b, s: (b * 2, s)  # noqa: E731
    for source in (stream, plain, stream.map(double)):
        parts = [source.shard(k, 4) for k in range(4)]
        for i in range(len(source)):
            for got, want in zip(_joined(parts, i), source[i]):
                np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        stream.map(double).shard(1, 2)[0][0], 2 * stream.shard(1, 2)[0][0]
    )


def test_patch_stream_shards_cut_only_their_images_and_match_the_batch():
    rng = np.random.default_rng(1)
    frames = [rng.random((40, 40, 3)).astype("float32") for _ in range(6)]
    data = ArrayFrames([f"f{i}" for i in range(6)], [f * 0.5 for f in frames], frames)
    stream, _ = patch_stream(data, 6, 0, 0, 1, patch_size=16, threshold=None)
    for workers in (2, 3, 6):  # 3 and 6 split an image's two patches between workers
        parts = [stream.shard(k, workers) for k in range(workers)]
        for got, want in zip(_joined(parts, 0), stream[0]):
            np.testing.assert_array_equal(got, want)


def test_replica_parts_give_each_local_replica_its_own_rows():
    sharp = np.random.default_rng(2).random((8, 4, 4, 3)).astype("float32")
    stream, _ = training_stream(sharp, 8, 0, 0, 1)
    parts = collectives.replica_parts(stream, 1, 2, 2)  # worker 1 of 2, two replicas each
    np.testing.assert_array_equal(parts[1][0][1], stream[0][1][6:8])


# --- the launcher ------------------------------------------------------------------------------


def test_the_launcher_stops_the_others_after_a_failure_and_says_who_failed():
    code = (
        "import os, sys, time\n"
        "assert '127.0.0.1' in os.environ['TF_CONFIG']\n"
        "sys.exit(3) if os.environ['KERAS_DISTRIBUTION_PROCESS_ID'] == '0' else time.sleep(60)\n"
    )
    workers = launch.start([sys.executable, "-c", code], 2, echo=False)
    began = time.monotonic()
    launch.watch(workers, timeout=30, grace=1)
    assert time.monotonic() - began < 20
    text = launch.report(workers)
    assert "worker 0 failed first (exit status 3)" in text
    assert "worker 1: stopped by the launcher" in text and "resumes from" in text


def test_the_scaling_record_compares_each_plan_with_one_worker():
    from deblurlab.perf import scaling

    assert scaling.parse_plans("1x1, 2x1") == [(1, 1), (2, 1)]
    with pytest.raises(ValueError, match="WORKERSxTHREADS"):
        scaling.parse_plans("2")
    kept = json.loads(scaling.RECORD.read_text())
    assert kept["machine"] and kept["note"] and kept["load_before"]
    run = {"backend": "jax", "steps_per_epoch": 4, "global_batch": 8}
    record = {
        **kept,
        "runs": [
            {**run, "workers": 1, "threads_per_worker": 1, "images_per_s": 100.0},
            {**run, "workers": 1, "threads_per_worker": 2, "images_per_s": 160.0},
            {**run, "workers": 2, "threads_per_worker": 1, "images_per_s": 80.0},
        ],
    }
    lines = scaling.summary(record).splitlines()
    assert lines[-1].endswith(
        "80.0 images/s (0.80x 1 worker x 1 thread(s); 0.50x 1 worker x 2 thread(s))"
    )
    assert lines[1].endswith("1 worker x 1 thread: 100.0 images/s")


# --- the SLURM and SSH scripts (with stand-ins for scontrol and ssh) ---------------------------

TOOLS = Path(__file__).resolve().parents[1] / "tools"
SHOW = (
    "from deblurlab.runtime import cluster; c = cluster.from_env(); "
    "print(c.index, c.count, c.addresses)"
)


def _script_env(tmp_path, **extra):
    lib = str(Path(deblurlab.__file__).parents[1])
    path = os.pathsep.join([str(tmp_path), os.environ["PATH"]])
    return {**os.environ, "PATH": path, "PYTHONPATH": lib, "DEBLURLAB_VENV": "none", **extra}


def _stand_in(folder: Path, name: str, body: str) -> None:
    (folder / name).write_text("#!/usr/bin/env bash\n" + body)
    (folder / name).chmod(0o755)


def test_the_slurm_script_makes_each_task_the_worker_of_its_node(tmp_path):
    _stand_in(tmp_path, "scontrol", 'printf "n1\\nn2\\n"\n')  # scontrol show hostnames n[1-2]
    env = _script_env(
        tmp_path, SLURM_JOB_NODELIST="n[1-2]", SLURM_NTASKS="2", SLURM_PROCID="1", SLURM_JOB_ID="7"
    )
    command = ["bash", str(TOOLS / "slurm_train.sh"), "--task", sys.executable, "-c", SHOW]
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "1 2 ('n1:20007', 'n2:20007')", out.stderr


def test_the_ssh_script_starts_a_worker_a_host_and_ends_the_rest_after_a_failure(tmp_path):
    _stand_in(tmp_path, "fake-ssh", '[ "$1" = -tt ] && shift; shift; exec bash -c "$1"\n')
    env = _script_env(tmp_path, SSH=str(tmp_path / "fake-ssh"), DEBLURLAB_GRACE="1")
    script = ["bash", str(TOOLS / "ssh_train.sh"), "h0,h1", sys.executable, "-c"]
    out = subprocess.run([*script, SHOW], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split("\n")[:2]) == [
        "[host0] 0 2 ('h0:29400', 'h1:29400')",
        "[host1] 1 2 ('h0:29400', 'h1:29400')",
    ]
    fail = (
        "import os, sys, time; os.environ['KERAS_DISTRIBUTION_PROCESS_ID'] == '1' and sys.exit(3)"
    )
    began = time.monotonic()
    out = subprocess.run(
        [*script, fail + "; time.sleep(60)"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 3 and time.monotonic() - began < 30
    assert "worker 1 (h1) failed first (exit status 3)" in out.stderr
    assert "ended worker 0" in out.stderr and "resume" in out.stderr


# --- two workers ---------------------------------------------------------------------------------


def _state_epoch(output: Path) -> int:
    try:
        return json.loads((output / "runs" / "cluster-test" / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return -1


def _wait(condition, workers, seconds: float, what: str) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return
        if any(w.process.poll() is not None for w in workers):
            break
        time.sleep(0.2)
    for w in workers:
        w.stop()
    launch.watch(workers, timeout=30)
    tails = "\n".join(line for w in workers for line in list(w.lines)[-15:])
    pytest.fail(f"no {what} within {seconds:.0f} s:\n{launch.report(workers)}\n{tails}")


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.fixture(scope="module")
def killed_then_resumed(tmp_path_factory):
    """Two workers killed and restarted: (the first launch's workers, the second's, folder)."""
    folder = tmp_path_factory.mktemp("cluster")
    output = folder / "output"
    env = {
        "DEBLURLAB_OUTPUT_DIR": str(output),
        "KERAS_BACKEND": keras.backend.backend(),
        cluster.HEARTBEAT_ENV: "8",  # JAX: a killed worker is noticed after 8 s, not 100
        cluster.START_TIMEOUT_ENV: "90",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(deblurlab.__file__).parents[1]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    held = folder / "first" / "held-1"
    command = [sys.executable, str(WORKER), "--epochs", str(EPOCHS)]
    first = launch.start(
        [*command, "--out", str(folder / "first"), "--hold-after-epoch", str(HOLD_EPOCH)],
        2,
        env,
        threads=1,
        echo=False,
    )
    _wait(
        lambda: held.exists() and _state_epoch(output) == HOLD_EPOCH,
        first,
        START,
        "checkpoint of the held epoch",
    )
    os.killpg(first[1].process.pid, signal.SIGKILL)
    launch.watch(first, timeout=END, grace=END)
    second = launch.start([*command, "--out", str(folder / "second")], 2, env, 1, echo=False)
    launch.watch(second, timeout=END, grace=30)
    return first, second, folder


@pytest.mark.jax
@pytest.mark.cluster
def test_killing_a_worker_ends_the_run_with_a_clear_error(killed_then_resumed):
    first, _, _ = killed_then_resumed
    chief = first[0]
    said = "\n".join(chief.lines)
    assert chief.process.returncode not in (0, None) and not chief.stopped, said[-3000:]
    if keras.backend.backend() == "tensorflow":  # train raises deblurlab's ClusterError
        assert "ClusterError: worker 0 of 2: training stopped because another worker" in said
        assert f"cluster-test, after epoch {HOLD_EPOCH + 1}." in said
    else:  # JAX's distributed service ends the process itself (SIGABRT), saying why
        assert "another task died" in said, said[-3000:]
    assert "worker 1 failed first (killed by SIGKILL)" in launch.report(first)


@pytest.mark.jax
@pytest.mark.cluster
def test_a_restart_resumes_from_the_last_checkpoint(killed_then_resumed):
    _, second, folder = killed_then_resumed
    assert [w.process.returncode for w in second] == [0, 0], (
        launch.report(second) + "\n" + ("\n".join(list(second[0].lines)[-30:]))
    )
    results = [json.loads((folder / "second" / f"result-{k}.json").read_text()) for k in (0, 1)]
    for result in results:
        assert result["resumed_at"] == HOLD_EPOCH + 1 and result["epochs"] == [1, 2, 3]
        assert result["describe"].endswith("over 2 workers")
    assert results[0]["loss"] == results[1]["loss"]


@pytest.mark.jax
@pytest.mark.cluster
def test_both_workers_end_with_the_weights_of_one_process(killed_then_resumed, monkeypatch):
    import cluster_worker

    _, second, folder = killed_then_resumed
    assert [w.process.returncode for w in second] == [0, 0], launch.report(second)
    chief, other = (_weights(folder / "second" / f"weights-{k}.npz") for k in (0, 1))
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    monkeypatch.setenv("DEBLURLAB_OUTPUT_DIR", str(folder / "single"))
    single, result, setup = cluster_worker.train_once("single", EPOCHS)
    assert setup.workers == 1 and result.resumed_at is None
    for a, b in zip(chief, single):
        np.testing.assert_allclose(a, b, rtol=0, atol=WEIGHT_TOLERANCE)


def test_tensorflow_refuses_a_strategy_made_too_late():
    """MultiWorkerMirroredStrategy must come before TensorFlow computes: the error says so."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("a TensorFlow start-up rule")
    member = cluster.local_cluster(2)[0]
    code = (
        "import tensorflow as tf\n"
        "tf.constant(1.0) + 1\n"
        "from deblurlab.runtime import cluster\n"
        "try:\n    cluster.initialize()\n"
        "except cluster.ClusterError as e:\n    print(e)\n"
    )
    env = {**os.environ, **member.env(), "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    expected = "call deblurlab.runtime.cluster.initialize() at the start"
    assert expected in out.stdout, out.stderr[-2000:]
