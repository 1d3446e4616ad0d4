"""The tuning pass (``python -m deblurlab.perf --tune``): the evidence behind
``deblurlab.runtime.compute``.

It times each model's reference set-up against ``steps_per_execution=10``, mixed precision, XLA,
both, and a 4x batch, and writes ``lib/deblurlab/tuning/<machine key>.json`` on a CPU.
"""

from __future__ import annotations

import statistics
import time

from . import machine
from .child import run_model


def tuning_variants(device: str, base: dict) -> dict:
    """The reference set-up and each tuning change applied alone.

    Args: ``device``; ``base`` (``precision``, ``steps_per_execution``, ``jit`` from the command
    line; precision None: per model, the reference is float32). Returns: label -> settings.
    """
    mixed = "mixed_float16" if device == "gpu" else "mixed_bfloat16"
    precision = base["precision"] or "float32"
    ref = {
        "precision": "float32" if precision.startswith("mixed") else precision,
        "steps_per_execution": base["steps_per_execution"],
        "jit": bool(base["jit"]),
    }
    return {
        "reference": ref,
        "steps_per_execution=10": {**ref, "steps_per_execution": 10},
        mixed: {**ref, "precision": mixed},
        "jit_compile": {**ref, "jit": True},
        f"{mixed}+jit_compile": {**ref, "precision": mixed, "jit": True},  # some models fail so
        "batch x4": {**ref, "batch_size_factor": 4},
    }


def tune_model(
    name: str,
    input_shape,
    batch_size: int,
    variants: dict,
    rounds: int = 5,
    window_s: float = 1.0,
    infer_window_s: float | None = None,
) -> dict:
    """Paired timing of training set-ups of one model in this process (``--tune``).

    Every variant (``{"label": {"precision", "steps_per_execution", "jit"}}``, the first one the
    reference) is built, compiled and warmed up, then each round times one training window and one
    inference window of every variant back to back, in a rotating order. The ratio to the
    reference is taken within each round, so a change in the machine's load between rounds cancels
    out; the median over rounds is reported. Each variant's windows have a fixed number of steps (a
    multiple of its steps_per_execution, about ``window_s`` long).
    """
    import keras

    from .clock import epoch_timer
    from .timing import build_for_timing, inference_fn

    if machine.detect_device() == "gpu":
        machine.gpu_memory_growth()
    labels = list(variants)
    built, failed = {}, {}
    for label in labels:
        v = variants[label]
        batch = int(v.get("batch_size") or batch_size * v.get("batch_size_factor", 1))
        t0 = time.perf_counter()
        try:
            b = build_for_timing(
                name,
                input_shape,
                batch,
                v.get("precision", "float32"),
                int(v.get("steps_per_execution", 1)),
                v.get("jit"),
            )
            b["timer"] = epoch_timer()
            b["model"].fit(
                b["data"],
                steps_per_epoch=b["spe"],
                epochs=1,
                verbose=0,
                shuffle=False,
                callbacks=[b["timer"]],
            )
            b["first_execution_s"] = time.perf_counter() - t0
            b["infer"], to_device = inference_fn(b["model"], b["jit_compile"])
            b["xt"] = to_device(b["x"])
            b["infer"](b["xt"])  # trace
        except Exception as error:  # noqa: BLE001 - e.g. XLA refusing mixed precision: record it
            if label == labels[0]:
                raise
            failed[label] = f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
            continue
        built[label] = b
    keras.mixed_precision.set_global_policy("float32")
    labels = [label for label in labels if label in built]

    def train_window(label, steps):
        b = built[label]
        b["model"].fit(
            b["data"],
            steps_per_epoch=steps,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[b["timer"]],
        )
        return steps * b["batch"] / b["timer"].seconds[-1]

    def infer_window(label, calls):
        b = built[label]
        t0 = time.perf_counter()
        for _ in range(calls):
            out = b["infer"](b["xt"])
        machine.fetch(out)
        return calls * b["batch"] / (time.perf_counter() - t0)

    ref = labels[0]
    steps, calls = {}, {}
    for label, b in built.items():  # size each variant's windows from one warm window of its own
        step_s = b["batch"] / train_window(label, b["spe"])
        steps[label] = max(b["spe"], int(round(window_s / step_s / b["spe"])) * b["spe"])
        call_s = b["batch"] / infer_window(label, 1)
        calls[label] = max(1, int(round((infer_window_s or window_s) / call_s)))
    train = {label: [] for label in labels}
    infer = {label: [] for label in labels}
    for r in range(rounds):
        order = labels[r % len(labels) :] + labels[: r % len(labels)]
        for label in order:
            train[label].append(train_window(label, steps[label]))
            infer[label].append(infer_window(label, calls[label]))
    result = {
        "name": name,
        "input_shape": list(input_shape),
        "batch_size": batch_size,
        "rounds": rounds,
        "backend": keras.backend.backend(),
        "train_steps_per_window": steps,
        "infer_calls_per_window": calls,
        "reference": ref,
        "variants": {},
    }
    for label in labels:
        tr = [a / b for a, b in zip(train[label], train[ref])]
        inf = [a / b for a, b in zip(infer[label], infer[ref])]
        result["variants"][label] = {
            "settings": variants[label],
            "batch_size": built[label]["batch"],
            "jit_compile": built[label]["jit_compile"],
            "first_execution_s": built[label]["first_execution_s"],
            "train_images_per_s": statistics.median(train[label]),
            "train_images_per_s_samples": train[label],
            "infer_images_per_s": statistics.median(infer[label]),
            "infer_images_per_s_samples": infer[label],
            "train_ratio": statistics.median(tr),
            "train_ratio_samples": tr,
            "infer_ratio": statistics.median(inf),
            "infer_ratio_samples": inf,
        }
    for label, error in failed.items():
        result["variants"][label] = {"settings": variants[label], "error": error}
    return result


def run_tuning(models: list[str], plans: dict, device: str, base: dict, opts: dict) -> dict:
    """``tune_model`` for every model, each in its own process. Returns: name -> result."""
    print("tuning: each change alone against the reference, paired round by round", flush=True)
    variants = tuning_variants(device, base)
    tuning = {}
    for i, name in enumerate(models):
        plan = plans[name]
        t0 = time.perf_counter()
        print(
            f"[{i + 1}/{len(models)}] {name} {plan['input_shape']} batch {plan['batch_size']} ...",
            end=" ",
            flush=True,
        )
        tuning[name] = run_model(
            name,
            {
                "mode": "tune",
                "variants": variants,
                "rounds": opts["repeats"],
                "window_s": opts["window_s"],
                "input_shape": plan["input_shape"],
                "batch_size": plan["batch_size"],
            },
            opts["model_timeout_s"] * 3,
        )
        if "error" in tuning[name]:
            print(f"FAILED: {tuning[name]['error']}", flush=True)
        else:
            print(
                ", ".join(
                    f"{k} fails" if "error" in v else f"{k} x{v['train_ratio']:.2f}"
                    for k, v in tuning[name]["variants"].items()
                    if k != "reference"
                )
                + f" ({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return tuning


def summarize_tuning(tuning: dict) -> dict:
    """Per model: the median paired ratio to the reference of each change (> 1 = faster)."""
    return {
        name: {
            label: {"train_ratio": v["train_ratio"], "infer_ratio": v["infer_ratio"]}
            for label, v in result.get("variants", {}).items()
            if label != result.get("reference") and "error" not in v
        }
        for name, result in tuning.items()
    }


def method_text() -> str:
    """The method paragraph that a tuning record keeps (``tune_model``'s docstring)."""
    return tune_model.__doc__.split("\n\n")[1].strip()
