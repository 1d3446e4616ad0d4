#!/usr/bin/env bash
# Checks that the universal lock requirements.txt still installs on every platform and Python
# version the README names, from the package index (needs network; not part of the unit tests).
#
# For each platform x Python it resolves requirements.txt (every package pinned, with its markers)
# for that target, wheels only, with uv, and compares the result with the lock: the line is OK
# when it resolves and picks exactly the locked versions, with nothing the lock lacks; FAIL when a
# locked version has no wheel there or a dependency is missing from the lock. It also checks that
# requirements.txt is what requirements.in compiles to (the lock is current).
#
#   tools/check_platforms.sh                        # all platforms, Python 3.11 3.12 3.13
#   PYTHONS="3.13" PLATFORMS="aarch64-apple-darwin" tools/check_platforms.sh
#
# Uses `uv` from PATH, or installs it into a temporary virtual environment (python3 -m venv).
# Exits non-zero if any line is FAIL.
set -uo pipefail
export LC_ALL=C
# Resolving for another Python needs no interpreter of that version (wheels only): without this uv
# would try to download one for each --python-version, off the package index.
export UV_PYTHON_DOWNLOADS=never
cd "$(dirname "$0")/.."

LOCK=requirements.txt
INPUT=requirements.in
MIN_PYTHON=3.11   # the --python-version of the lock's header command
PYTHONS=${PYTHONS:-"3.11 3.12 3.13"}
PLATFORMS=${PLATFORMS:-"x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu aarch64-apple-darwin x86_64-pc-windows-msvc"}
UV_SPEC=${UV_SPEC:-"uv>=0.13,<0.14"}

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if command -v uv >/dev/null 2>&1; then
    UV=uv
else
    echo "uv not on PATH: installing $UV_SPEC into a temporary virtual environment" >&2
    python3 -m venv "$TMP/uv-venv" && "$TMP/uv-venv/bin/python" -m pip install --quiet "$UV_SPEC" \
        || { echo "FAIL could not install $UV_SPEC" >&2; exit 2; }
    UV="$TMP/uv-venv/bin/uv"
fi
echo "using $("$UV" --version)"

# name==version lines, names normalised (PEP 503), markers and comments dropped.
pins() { grep -E '^[A-Za-z0-9]' "$1" | sed -E 's/ *;.*//; s/ +$//' | awk -F'==' '{n=tolower($1); gsub(/[-_.]+/, "-", n); print n "==" $2}' | sort -u; }

pins "$LOCK" > "$TMP/locked"
failures=0
start=$SECONDS

# The resolutions wait on the index, not the CPU: start them all, then report in order.
for platform in $PLATFORMS; do
    for python in $PYTHONS; do
        ( "$UV" pip compile --quiet --no-header --no-annotate --only-binary :all: \
              --python-platform "$platform" --python-version "$python" \
              "$LOCK" -o "$TMP/out-$platform-$python" > "$TMP/log-$platform-$python" 2>&1
          echo $? > "$TMP/rc-$platform-$python" ) &
    done
done
wait

for platform in $PLATFORMS; do
    for python in $PYTHONS; do
        label="$platform, Python $python"
        out="$TMP/out-$platform-$python"
        log="$TMP/log-$platform-$python"
        if [ "$(cat "$TMP/rc-$platform-$python")" != 0 ]; then
            reason=$( { grep -m1 -E '^ *cause:' "$log" || grep -m1 -E '^ *error:' "$log"; } | sed -E 's/^ *//' | cut -c1-240)
            echo "FAIL $label: ${reason:-uv pip compile failed}"
            sed 's/^/    /' "$log" >&2
            failures=$((failures + 1))
            continue
        fi
        extra=$(comm -23 <(pins "$out") "$TMP/locked" | tr '\n' ' ')
        if [ -n "$extra" ]; then
            echo "FAIL $label: resolves to packages/versions not in $LOCK: $extra"
            failures=$((failures + 1))
        else
            echo "OK   $label: $(pins "$out" | wc -l) locked packages, wheels for all"
        fi
    done
done

# The lock is current: recompiling requirements.in (with the lock as the preferred versions, as
# the header command does) gives the same pins.
cp "$LOCK" "$TMP/relock.txt"
if "$UV" pip compile --quiet --universal --python-version "$MIN_PYTHON" "$INPUT" -o "$TMP/relock.txt" > "$TMP/log" 2>&1; then
    if diff <(grep -E '^[A-Za-z0-9]' "$LOCK") <(grep -E '^[A-Za-z0-9]' "$TMP/relock.txt") > "$TMP/diff"; then
        echo "OK   $LOCK is the universal lock of $INPUT"
    else
        echo "FAIL $LOCK is not what $INPUT compiles to; regenerate it with the command in its header:"
        sed 's/^/    /' "$TMP/diff"
        failures=$((failures + 1))
    fi
else
    echo "FAIL $INPUT does not compile: $(grep -m1 -E '^ *(cause|error):' "$TMP/log" | sed -E 's/^ *//' | cut -c1-220)"
    sed 's/^/    /' "$TMP/log" >&2
    failures=$((failures + 1))
fi

echo "$failures failure(s), $((SECONDS - start)) s"
[ "$failures" -eq 0 ]
