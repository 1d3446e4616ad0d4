"""Derived columns of a benchmark row: achieved FLOP/s, shares of the peaks, the roofline
traffic model, the "bound" heuristics and the speed targets. Plain arithmetic, no framework."""

from __future__ import annotations

# Evidence thresholds of the "bound" column (written into the record beside the results).
NEAR_PEAK = 0.5  # achieved / fp32 peak at or above this: compute bound
THIN_CHANNELS = 32  # FLOP-weighted mean of min(C_in, C_out) below this: small channel counts
MEMORY_SHARE = 0.3  # memory-bound layers' share of the roofline time at or above this
OVERHEAD_SHARE = 0.3  # fixed per-call cost above this share of a batch's inference time
BACKWARD_RATIO = 4.0  # inference/training img/s above this (3 is the FLOP ratio)

BOUND_RULES = {
    "compute": f"training FLOP/s >= {NEAR_PEAK:.0%} of the fp32 matmul peak",
    "memory (share of time)": (
        "forward arithmetic intensity below the machine balance (fp32 peak / bandwidth), or "
        f"memory-bound layers (BatchNorm, concat, activations) >= {MEMORY_SHARE:.0%} of the "
        "roofline time (memory_time_share)"
    ),
    "thin channels (mean)": (
        f"FLOP-weighted mean of min(C_in, C_out) over conv layers < {THIN_CHANNELS}"
    ),
    "per-call overhead (share)": (
        f"fixed cost per inference call > {OVERHEAD_SHARE:.0%} of the batch's "
        "time (Python/graph dispatch, thread start-up)"
    ),
    "backward-heavy (ratio)": (
        f"inference img/s / training img/s > {BACKWARD_RATIO} (3 expected from FLOPs)"
    ),
}

# Issue 6's targets for the default profile: training images/s per model (``bench_target`` in its
# ``@register`` call) and this share of the fp32 peak for the CIFAR nets.
TARGETS_SOURCE = "set on a 2-core AVX-512/BF16 machine"
PEAK_SHARE_TARGET = 0.4
_SHORT = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}


def derive(row: dict, peaks: dict, pipelines: dict | None) -> dict:
    """Achieved FLOP/s, fractions of the peaks, pipeline headroom and the bound of one model row.

    Args: a ``timing.bench_model`` row, the run's ``peaks`` and ``pipelines``. Returns: the row,
    with the derived columns added (a failed row comes back as it is).
    """
    if "error" in row:
        return row
    fwd = row["forward_flops_per_image"]
    row["train_flops_per_s"] = 3 * fwd * row["train_images_per_s"]
    row["infer_flops_per_s"] = fwd * row["infer_images_per_s"]
    for dtype, short in _SHORT.items():
        if dtype in peaks:
            peak = peaks[dtype]["flops_per_s"]
            row[f"train_frac_{short}_peak"] = row["train_flops_per_s"] / peak
            row[f"infer_frac_{short}_peak"] = row["infer_flops_per_s"] / peak
    # The share of the peak of the arithmetic the model trained in (bf16 for mixed_bfloat16, ...).
    own = {"mixed_bfloat16": "bfloat16", "mixed_float16": "float16"}.get(
        row.get("precision"), "float32"
    )
    if own in peaks:
        row["train_own_peak"] = own
        row["train_frac_own_peak"] = row["train_flops_per_s"] / peaks[own]["flops_per_s"]
    row["infer_train_ratio"] = row["infer_images_per_s"] / row["train_images_per_s"]
    # Training images/s if every FLOP ran at the measured fp32 matmul peak: no setting can beat it.
    row["train_ceiling_images_per_s"] = peaks["float32"]["flops_per_s"] / (3 * fwd) if fwd else None
    traffic = row["traffic"]
    bytes_per_image = traffic["traffic_bytes"] + traffic["weight_bytes"] / row["batch_size"]
    row["arithmetic_intensity"] = fwd / bytes_per_image if bytes_per_image else 0.0
    memory_bytes = traffic["traffic_bytes"] * traffic["memory_bound_traffic_share"]
    mem_s = memory_bytes / peaks["bandwidth"]["bytes_per_s"]
    compute_s = fwd / peaks["float32"]["flops_per_s"]
    row["memory_time_share"] = mem_s / (mem_s + compute_s) if mem_s + compute_s else 0.0
    model_batches = row["train_images_per_s"] / row["batch_size"]
    row["train_batches_per_s"] = model_batches
    pipelines = pipelines or {}
    key = "cifar_blur_stream" if row["dataset"] == "cifar10" else "reds_patches"
    feed = pipelines.get(key, {})
    same_size = feed.get("patch_size", row["input_shape"][0]) == row["input_shape"][0]
    if feed.get("batches_per_s") and feed.get("batch_size") == row["batch_size"] and same_size:
        row["pipeline"] = key
        row["pipeline_headroom"] = feed["batches_per_s"] / model_batches
    row["bound"], row["bound_evidence"] = bound_of(row, peaks)
    return row


def bound_of(row: dict, peaks: dict) -> tuple[str, str]:
    """What limits the model, from the evidence in ``row`` (see ``BOUND_RULES``).

    Returns: a short label for the table and the evidence behind it, in words.
    """
    frac = row.get("train_frac_fp32_peak", 0.0)
    if frac >= NEAR_PEAK:
        return "compute", f"training runs at {frac:.0%} of the fp32 matmul peak"
    labels, evidence = [], [f"training at {frac:.0%} of the fp32 peak"]
    balance = peaks.get("machine_balance_flop_per_byte") or 0.0
    share = row["traffic"]["memory_bound_traffic_share"]
    mem_time = row.get("memory_time_share", 0.0)
    if (balance and row["arithmetic_intensity"] < balance) or mem_time >= MEMORY_SHARE:
        labels.append(f"memory ({mem_time:.0%})")
        evidence.append(
            f"BatchNorm/concat/activation layers move {share:.0%} of the bytes, "
            f"~{mem_time:.0%} of the roofline time; arithmetic intensity "
            f"{row['arithmetic_intensity']:.0f} vs machine balance {balance:.0f} FLOP/B"
        )
    channels = row["traffic"]["mean_channels"]
    if channels < THIN_CHANNELS:
        labels.append(f"thin channels ({channels:.0f})")
        evidence.append(
            f"FLOP-weighted mean of min(C_in, C_out) is {channels:.0f} < {THIN_CHANNELS}"
        )
    overhead = row.get("overhead") or {}
    if overhead.get("share", 0.0) > OVERHEAD_SHARE:
        labels.append(f"per-call overhead ({overhead['share']:.0%})")
        evidence.append(
            f"a fixed {overhead['fixed_s'] * 1e3:.1f} ms per inference call is "
            f"{overhead['share']:.0%} of a batch's time"
        )
    ratio = row["infer_train_ratio"]
    if ratio > BACKWARD_RATIO:
        labels.append(f"backward-heavy ({ratio:.1f}x)")
        evidence.append(
            f"inference is {ratio:.1f}x faster than training per image (3x expected "
            "from FLOPs): BatchNorm/concat gradients, optimizer updates"
        )
    if not labels:
        labels.append("unclear")
        evidence.append("no rule fired: see traffic, overhead and infer_train_ratio")
    return ", ".join(labels), "; ".join(evidence)


def target_checks(rows: list[dict], quick: bool = False) -> list[dict]:
    """Each speed target against the measurement, with the ceiling and the bound where missed.

    Args: derived rows; ``quick`` marks the texts as not the default profile's sizes.
    Returns: one dict per check (``model``, ``kind``, ``target``, ``measured``, ``met``, ``text``).
    """
    from ..models import get_spec

    checks = []
    for r in rows:
        if "error" in r:
            continue
        bound = f"bound: {r['bound']}"
        target = get_spec(r["name"]).bench_target
        if target is not None:
            ceiling = r.get("train_ceiling_images_per_s") or 0.0
            met = r["train_images_per_s"] >= target
            if met:
                why = ""
            elif ceiling < target:
                why = (
                    f"; above this machine's ceiling of {ceiling:.1f} img/s (every FLOP at the "
                    "fp32 "
                    "peak): out of reach here"
                )
            else:
                why = f"; reachable in principle ({bound})"
            checks.append(
                {
                    "model": r["name"],
                    "kind": "train_images_per_s",
                    "target": target,
                    "measured": r["train_images_per_s"],
                    "ceiling": ceiling,
                    "met": met,
                    "text": f"{r['name']}: {r['train_images_per_s']:.1f} train img/s vs "
                    f"{target:.0f}{why}",
                }
            )
        if r["dataset"] == "cifar10":
            share = r.get("train_frac_fp32_peak", 0.0)
            met = share >= PEAK_SHARE_TARGET
            checks.append(
                {
                    "model": r["name"],
                    "kind": "train_frac_fp32_peak",
                    "target": PEAK_SHARE_TARGET,
                    "measured": share,
                    "met": met,
                    "text": f"{r['name']}: {share:.0%} of the fp32 peak vs {PEAK_SHARE_TARGET:.0%}"
                    + ("" if met else f" ({bound})"),
                }
            )
    if quick:
        for check in checks:
            check["text"] += " [--quick sizes: not the default profile]"
    return checks
