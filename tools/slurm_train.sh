#!/usr/bin/env bash
# Data-parallel training over the nodes of a SLURM job: one task a node, each a deblurlab worker
# (docs/clusters.md). Every task runs the same command; worker 0 (the first node) is the chief.
#
#   sbatch --nodes=4 tools/slurm_train.sh python -m deblurlab.reference --models resunet3
#   salloc --nodes=2 ...; bash tools/slurm_train.sh python -m deblurlab.reference
#
# Outside a job step it calls itself through srun (--ntasks-per-node=1, --kill-on-bad-exit=1, so
# one worker's failure ends the others); inside (--task) it sets, for the engine in use, TF_CONFIG
# (TensorFlow) and KERAS_DISTRIBUTION_JOB_ADDRESSES / _NUM_PROCESSES / _PROCESS_ID (JAX) from
# SLURM_JOB_NODELIST, SLURM_NTASKS and SLURM_PROCID, holds numpy/TF/XLA to SLURM_CPUS_PER_TASK
# threads, and runs the command. Settings (environment):
#   DEBLURLAB_VENV         the virtual environment to activate (default: .venv of this checkout)
#   DEBLURLAB_PORT         the port every worker listens on (default: 20000 + job id % 20000)
#   DEBLURLAB_OUTPUT_DIR   where runs/ goes: it must be one folder every node sees (shared FS)
#   KERAS_BACKEND          tensorflow (MultiWorkerMirroredStrategy) or jax (DataParallel)
#SBATCH --job-name=deblurlab
#SBATCH --ntasks-per-node=1
#SBATCH --exclusive
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"

if [ "${1:-}" != "--task" ]; then
  [ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARGS...] (see the header)" >&2; exit 2; }
  : "${SLURM_JOB_ID:?run this inside a SLURM job (sbatch or salloc)}"
  exec srun --ntasks-per-node=1 --kill-on-bad-exit=1 bash "$0" --task "$@"
fi
shift

VENV=${DEBLURLAB_VENV:-.venv}
# shellcheck disable=SC1091
[ -f "$VENV/bin/activate" ] && source "$VENV/bin/activate"
HOSTS=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | paste -sd, -)
PORT=${DEBLURLAB_PORT:-$((20000 + SLURM_JOB_ID % 20000))}
if [ "$(tr ',' '\n' <<<"$HOSTS" | wc -l)" != "$SLURM_NTASKS" ]; then
  echo "slurm_train.sh: $SLURM_NTASKS tasks on nodes $HOSTS: run one task a node" >&2
  exit 2
fi
eval "$(python -m deblurlab.runtime.cluster --hosts "$HOSTS" --port "$PORT" --index "$SLURM_PROCID")"
if [ -n "${SLURM_CPUS_PER_TASK:-}" ]; then
  export OMP_NUM_THREADS=$SLURM_CPUS_PER_TASK TF_NUM_INTRAOP_THREADS=$SLURM_CPUS_PER_TASK
fi
echo "slurm_train.sh: worker $SLURM_PROCID of $SLURM_NTASKS on $(hostname), cluster $HOSTS:$PORT" >&2
exec "$@"
