"""Timed windows and this process's counters (memory, CPU seconds); no framework imports."""

from __future__ import annotations

import statistics
import sys
import time

try:
    import resource
except ImportError:  # Windows
    resource = None


def time_calls(
    fn, window_s: float, repeats: int, warmup: int = 1, sync=None, budget_s: float | None = None
) -> dict:
    """Per-call seconds of ``fn()``, timed in windows.

    ``warmup`` untimed calls, then ``repeats`` timed windows of about ``window_s`` seconds each (at
    least one call each). The first window is one call; a call that lasts at least half a window
    counts as a sample, a shorter one only sizes the following windows. ``budget_s`` (seconds for
    the timed windows) lowers the number of windows, to no fewer than 3. ``sync(out)`` waits for
    the device. Returns: ``median_s``, ``samples_s``, ``calls_per_window`` and ``warmup_s``.
    """

    def timed(calls):
        t0 = time.perf_counter()
        out = None
        for _ in range(calls):
            out = fn()
        if sync:
            sync(out)
        return (time.perf_counter() - t0) / calls

    t0 = time.perf_counter()
    for _ in range(max(1, warmup)):
        out = fn()
    if sync:
        sync(out)
    first = time.perf_counter() - t0
    per_call = max(timed(1), 1e-7)
    samples = [per_call] if per_call >= window_s / 2 else []
    if budget_s is not None:
        window_s = min(window_s, budget_s / max(repeats, 1))
    calls = max(1, int(round(window_s / per_call)))
    if budget_s is not None:
        repeats = max(3, min(repeats, int(budget_s // (calls * per_call))))
    while len(samples) < repeats:
        samples.append(timed(calls))
    return {
        "median_s": statistics.median(samples),
        "samples_s": samples,
        "calls_per_window": calls,
        "warmup_s": first,
    }


def epoch_timer():
    """A Keras callback that keeps each epoch's wall seconds in ``.seconds`` (imports Keras)."""
    import keras

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self._t0 = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            for value in (logs or {}).values():  # reading a value waits for a device to finish
                float(value)
            self.seconds.append(time.perf_counter() - self._t0)

    return Timer()


def _proc_status_mb(field: str) -> float | None:
    """A memory line of /proc/self/status (``VmRSS``, ``VmHWM``) in MB, or None off Linux."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """This process's resident memory now (MB)."""
    current = _proc_status_mb("VmRSS")
    if current is not None or resource is None:
        return current or 0.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User plus system CPU seconds of this process."""
    if resource is None:
        return time.process_time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def maxrss_mb() -> float:
    """This process's peak resident memory (MB): VmHWM where Linux has it (``ru_maxrss`` keeps the
    forking parent's peak across exec, so it overstates a child), else ``ru_maxrss``."""
    peak = _proc_status_mb("VmHWM")
    if peak is not None or resource is None:
        return peak or 0.0
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale
