"""What the benchmark times: each model's input size and batch, and the run's time allowances."""

from __future__ import annotations

CIFAR_SIZE = (32, 32, 3)
MOTION_PATCH = 256  # the report's REDS patch side; used when the profiles name none
MOTION_BATCH = 10  # the report's REDS batch; used when the profiles name none
QUICK_MOTION_PATCH = 64
QUICK_BATCH = 8  # --quick caps every batch at this

# Time allowances (seconds). The whole default run must stay under 10 minutes on 2 cores.
DEFAULT = dict(
    repeats=5,
    window_s=1.0,
    total_budget_s=480.0,
    matmul_n=2048,
    bandwidth_elems=1 << 25,
    stream_images=2048,
    model_timeout_s=600.0,
)
QUICK = dict(
    repeats=3,
    window_s=0.15,
    total_budget_s=30.0,
    matmul_n=1024,
    bandwidth_elems=1 << 22,
    stream_images=256,
    model_timeout_s=180.0,
)


def bench_plan(
    name: str, quick: bool = False, motion_patch: int | None = None, device: str = "cpu"
) -> dict:
    """Input shape and batch of ``name`` as the device's profile trains it, and their source.

    CIFAR models: 32x32 at the default profile's batch. Motion models: the default profile's patch
    on a CPU (the network is fully convolutional, so its cost per pixel barely depends on the
    patch) and the full profile's (the report's 256x256) on a GPU. Returns: ``input_shape``,
    ``batch_size``, ``source``.
    """
    from ..models import get_spec
    from ..training import profiles

    spec = get_spec(name)
    if spec.dataset == "cifar10":
        batch = profiles.CIFAR_SIZES["default"]["batch_size"] or spec.training.get(
            "batch_size", 128
        )
        source = "profiles.CIFAR_SIZES['default']['batch_size']"
        if quick:
            batch, source = (
                min(int(batch), QUICK_BATCH),
                source + f"; --quick: batch <= {QUICK_BATCH}",
            )
        return dict(input_shape=list(CIFAR_SIZE), batch_size=int(batch), source=source)
    profile = "full" if device == "gpu" else "default"
    sizes = getattr(profiles, "MOTION_SIZES", {}).get(profile, {})
    batch = sizes.get("batch_size") or spec.training.get("batch_size") or MOTION_BATCH
    source = (
        f"batch: profiles.MOTION_SIZES['{profile}']['batch_size']"
        if sizes.get("batch_size")
        else f"batch: the report's {MOTION_BATCH}"
    )
    if motion_patch:
        patch = int(motion_patch)
        source += f"; patch: --motion-patch {patch}"
    else:
        patch = int(sizes.get("patch_size") or MOTION_PATCH)
        source += (
            f"; patch: profiles.MOTION_SIZES['{profile}']['patch_size'] (the {profile} profile "
            f"on a {device}; --motion-patch to change)"
        )
    if quick:
        patch, batch = min(int(patch), QUICK_MOTION_PATCH), min(int(batch), QUICK_BATCH)
        source += f"; --quick: {patch}x{patch}, batch <= {QUICK_BATCH}"
    return dict(input_shape=[int(patch), int(patch), 3], batch_size=int(batch), source=source)


def select_models(text: str) -> list[str]:
    """The models named in ``--models`` (comma-separated; empty: every registered model)."""
    from ..models import list_models

    registered = list_models()
    if not text:
        return registered
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in registered]
    if unknown:
        raise SystemExit(
            f"--models: unknown model(s) {', '.join(unknown)}; registered: {', '.join(registered)}"
        )
    return names
