#!/usr/bin/env bash
# Data-parallel training over machines reached by SSH: one deblurlab worker a host, all running
# the same command (docs/clusters.md). The first host is worker 0, the chief.
#
#   bash tools/ssh_train.sh node1,node2 python -m deblurlab.reference --models resunet3
#
# For each host it runs, over `ssh -tt` (so that ending ssh ends the remote worker): cd to the
# checkout, activate the venv, export TF_CONFIG (TensorFlow) and KERAS_DISTRIBUTION_JOB_ADDRESSES
# / _NUM_PROCESSES / _PROCESS_ID (JAX) for that worker, and the command. Output comes back a line
# at a time after [hostN]. When a worker fails, the others are ended after DEBLURLAB_GRACE seconds
# (the engine usually ends them first); the exit status is that of the first failure, else 0.
# Settings (environment):
#   DEBLURLAB_DIR          the checkout on every host (default: this checkout's path)
#   DEBLURLAB_VENV         its virtual environment (default: .venv)
#   DEBLURLAB_PORT         the port every worker listens on (default: 29400)
#   DEBLURLAB_GRACE        seconds, as above (default: 60)
#   DEBLURLAB_OUTPUT_DIR, KERAS_BACKEND and DEBLURLAB_* timeouts are passed on when set;
#   runs/ (DEBLURLAB_OUTPUT_DIR) must be one folder every host sees (a shared filesystem).
#   SSH                    the ssh command (default: ssh -o BatchMode=yes)
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 HOST1,HOST2[,...] COMMAND [ARGS...] (see the header)" >&2; exit 2; }
cd "$(dirname "$0")/.."
HOSTS=$1; shift
DIR=${DEBLURLAB_DIR:-$(pwd)}
VENV=${DEBLURLAB_VENV:-.venv}
PORT=${DEBLURLAB_PORT:-29400}
GRACE=${DEBLURLAB_GRACE:-60}
read -r -a SSH_CMD <<<"${SSH:-ssh -o BatchMode=yes}"
IFS=, read -r -a HOST_LIST <<<"$HOSTS"
COMMAND=$(printf '%q ' "$@")
PASS=""
for name in DEBLURLAB_OUTPUT_DIR KERAS_BACKEND DEBLURLAB_START_TIMEOUT DEBLURLAB_HEARTBEAT_TIMEOUT; do
  [ -n "${!name:-}" ] && PASS+="export $name=$(printf '%q' "${!name}"); "
done

PIDS=()
for i in "${!HOST_LIST[@]}"; do
  host=${HOST_LIST[$i]}
  exports=$(python -m deblurlab.runtime.cluster --hosts "$HOSTS" --port "$PORT" --index "$i") || exit 2
  remote="cd $(printf '%q' "$DIR") && { [ ! -f $VENV/bin/activate ] || . $VENV/bin/activate; } && ${PASS}${exports//$'\n'/; } && exec $COMMAND"
  ( "${SSH_CMD[@]}" -tt "$host" "$remote" < /dev/null 2>&1 | sed -u "s/^/[host$i] /"
    exit "${PIPESTATUS[0]}" ) &
  PIDS+=($!)
done

status=0
remaining=${#PIDS[@]}
failed_at=""
declare -A DONE=()
while [ "$remaining" -gt 0 ]; do
  for i in "${!PIDS[@]}"; do
    pid=${PIDS[$i]}
    [ -n "${DONE[$i]:-}" ] && continue
    kill -0 "$pid" 2>/dev/null && continue
    wait "$pid"; code=$?
    DONE[$i]=$code; remaining=$((remaining - 1))
    if [ "$code" != 0 ] && [ "$status" = 0 ]; then
      status=$code; failed_at=$SECONDS
      echo "ssh_train.sh: worker $i (${HOST_LIST[$i]}) failed first (exit status $code)" >&2
    fi
  done
  if [ -n "$failed_at" ] && [ $((SECONDS - failed_at)) -gt "$GRACE" ]; then
    for i in "${!PIDS[@]}"; do
      [ -z "${DONE[$i]:-}" ] && pkill -P "${PIDS[$i]}" 2>/dev/null && echo "ssh_train.sh: ended worker $i" >&2
    done
    failed_at=""
  fi
  sleep 0.5
done
if [ "$status" != 0 ]; then
  echo "ssh_train.sh: the run stopped; run the same command again to resume from the chief's last checkpoint" >&2
fi
exit "$status"
