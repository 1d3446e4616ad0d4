#!/usr/bin/env bash
# Reference (full-profile) training of the study's models on one lent NVIDIA GPU, through Keras's
# JAX backend (the GPU machine has JAX with CUDA and no TensorFlow). Three uses:
#
#   bash tools/gpu_reference.sh --prepare [--motion]
#       here, once: downloads the wheels the GPU image lacks (keras, namex, optree) into .gpu/whl and
#       copies the data into .gpu/data: CIFAR-10 as found (the CIFAR-10 models), or with --motion
#       the first 25 GoPro frame pairs of the sample (SRNDeblur_reds). Both do not fit one carry
#       (64 MiB with the checkout), so the motion model is a second call. .gpu is git-ignored.
#   device run, command "bash tools/gpu_reference.sh", carry [".gpu"], timeout_s 590
#       there: installs the wheels, checks the layers against the TensorFlow golden file
#       (deblurlab.training.backend_check), then trains every model not yet finished in the shipped
#       zoo/gpu (in-progress runs continue from their weights; GPU_RETRAIN=1 trains all afresh), one
#       process a model side by side (GPU_PARALLEL, default all: these small networks are bound by
#       per-step overhead, so one GPU serves several), within the time left, and writes
#       $OUT/gpu_reference.tar.gz (zoo/gpu, records + weights) and $OUT/gpu_reference.log.
#   bash tools/gpu_reference.sh --local --smoke --out DIR
#       the CPU test of the same path (tests/test_gpu_reference.py): this venv, KERAS_BACKEND=jax,
#       the smoke profile and one epoch; GPU_PARALLEL (default 1) and GPU_CONTINUE=1 (continue
#       the shipped zoo/gpu, as on the GPU) as set.
# Unpack the archive here with: tar xzf gpu_reference.tar.gz -C zoo/   (-> zoo/gpu/, see the README).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=device
PROFILE=full
MINUTES=${GPU_MINUTES:-8}     # training time inside the 10-minute command
OUT_DIR=${OUT:-build/gpu-out}
MAX_EPOCHS="--max-epochs ${GPU_MAX_EPOCHS:-200}"  # epochs are cheap there: the cap is only a safety
MOTION=0
MOTION_PAIRS=25
PARALLEL=${GPU_PARALLEL:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --prepare) MODE=prepare ;;
    --motion) MOTION=1 ;;
    --local) MODE=local ;;
    --smoke) PROFILE=smoke; MAX_EPOCHS="--max-epochs ${GPU_MAX_EPOCHS:-1}"; MINUTES=3 ;;
    --out) OUT_DIR="$2"; shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done

CIFAR_MODELS=resunet1,srndeblur_cifar,srndeblur_cifar_lstm,resunet3,eddensenet
CIFAR_MODELS=$CIFAR_MODELS,caessc_d22_f128_half,caessc_d22_f128_half_no_sigmoid,caessc_d30_f64

if [ "$MODE" = prepare ]; then
  rm -rf .gpu/data && mkdir -p .gpu/whl .gpu/data
  pins=$(grep -E '^(keras|namex|optree)==' requirements.txt | sed 's/ .*//')
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/whl $pins
  if [ "$MOTION" = 1 ]; then
    scene=$(ls -d ../shared/data/gopro-sample/GOPRO_Large/train/*/ | head -1)
    dest=.gpu/data/gopro/GOPRO_Large/train/$(basename "$scene")
    mkdir -p "$dest/blur" "$dest/sharp"
    for f in $(ls "$scene/blur" | head -$MOTION_PAIRS); do
      cp "$scene/blur/$f" "$dest/blur/"; cp "$scene/sharp/$f" "$dest/sharp/"
    done
  else
    cifar=$(ls -d ../shared/data/cifar10-subset 2>/dev/null | head -1)
    [ -n "$cifar" ] || { echo "no CIFAR-10 folder at ../shared/data/cifar10-subset" >&2; exit 1; }
    cp -r "$cifar" .gpu/data/cifar10
  fi
  echo "prepared .gpu ($(du -sh .gpu | cut -f1)): carry it with the device run"
  exit 0
fi

mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/gpu_reference.log"
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1
# float32, as the CPU reference runs: these small models are bound by per-step overhead on the GPU,
# so bfloat16 would buy little and add a difference between the GPU and CPU rows.
export DEBLURLAB_PRECISION=${GPU_PRECISION:-float32}
# True float32 (XLA would use TF32 on the GPU otherwise), as the layer check's tolerance assumes.
export JAX_DEFAULT_MATMUL_PRECISION=${JAX_DEFAULT_MATMUL_PRECISION:-highest}
set -o pipefail
if [ "$MODE" = device ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/lib
  PY=python3
  if [ -d .gpu/data/gopro ]; then
    MODELS=${GPU_MODELS:-srndeblur_reds}; DATA_ARGS="--motion-dir .gpu/data/gopro"
  else
    MODELS=${GPU_MODELS:-$CIFAR_MODELS}; DATA_ARGS="--data-dir .gpu/data/cifar10"
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$LOG"
else
  PY=${PY:-.venv/bin/python}
  MODELS=${GPU_MODELS:-$CIFAR_MODELS,srndeblur_reds}; DATA_ARGS=""
  : > "$LOG"
fi
ZOO_OUT="$OUT_DIR/zoo/gpu"
mkdir -p "$ZOO_OUT"
export DEBLURLAB_ZOO="$PWD/$ZOO_OUT"
[ "${ZOO_OUT:0:1}" = / ] && export DEBLURLAB_ZOO="$ZOO_OUT"
RETRAIN=--retrain
[ "$MODE" = device ] && [ -z "${GPU_RETRAIN:-}" ] && GPU_CONTINUE=${GPU_CONTINUE:-1}
if [ "${GPU_CONTINUE:-0}" = 1 ]; then
  # the machine starts bare: the shipped GPU runs tell which models finished (skipped) and which are
  # in progress (continued from their weights, with a fresh optimiser, said in their records)
  cp -r zoo/gpu/. "$DEBLURLAB_ZOO/"
  rm -rf "$DEBLURLAB_ZOO/logs"
  RETRAIN=
fi
[ "$MODE" = device ] && PARALLEL=${PARALLEL:-$(echo "$MODELS" | tr , '\n' | wc -l)}
PARALLEL=${PARALLEL:-1}

echo "== layers against the TensorFlow golden file" | tee -a "$LOG"
$PY -m deblurlab.training.backend_check 2>&1 | tee -a "$LOG" ||
  echo "== layer check FAILED (above); training goes on, and its records must be read with that" |
  tee -a "$LOG"

HOURS=$(python3 -c "print($MINUTES / 60)")
reference() {  # the reference command for the models "$1"
  $PY -m deblurlab.reference --profile "$PROFILE" --models "$1" $RETRAIN --hours "$HOURS" \
    --export-unfinished $MAX_EPOCHS $DATA_ARGS
}
echo "== reference training ($PROFILE profile, $MINUTES min, $PARALLEL process(es) at a time)" |
  tee -a "$LOG"
if [ "$PARALLEL" -le 1 ]; then
  reference "$MODELS" 2>&1 | tee -a "$LOG" ||
    echo "== the reference command failed (above); archiving what it exported" | tee -a "$LOG"
else
  # one process a model, PARALLEL at a time; JAX takes GPU memory as it needs it, not 75% each
  export XLA_PYTHON_CLIENT_PREALLOCATE=false
  mkdir -p "$OUT_DIR/logs"
  for model in ${MODELS//,/ }; do
    while [ "$(jobs -rp | wc -l)" -ge "$PARALLEL" ]; do sleep 1; done
    (reference "$model" > "$OUT_DIR/logs/$model.log" 2>&1 ||
      echo "== the reference command failed for $model (its log below)" >> "$OUT_DIR/logs/$model.log") &
  done
  wait
  for model in ${MODELS//,/ }; do
    echo "== $model" | tee -a "$LOG"; tee -a "$LOG" < "$OUT_DIR/logs/$model.log"
  done
  rm -rf "$OUT_DIR/logs"
fi

tar czf "$OUT_DIR/gpu_reference.tar.gz" -C "$OUT_DIR/zoo" gpu
rm -rf "$OUT_DIR/zoo"
if [ "$(stat -c %s "$OUT_DIR/gpu_reference.tar.gz")" -gt 15000000 ]; then
  # the device tool returns files of at most 16 MB: join here with cat gpu_reference.tar.gz.part-*
  split -b 15000000 "$OUT_DIR/gpu_reference.tar.gz" "$OUT_DIR/gpu_reference.tar.gz.part-"
  rm "$OUT_DIR/gpu_reference.tar.gz"
fi
echo "wrote $(ls "$OUT_DIR" | grep -c gpu_reference.tar) archive file(s) in $OUT_DIR" | tee -a "$LOG"
