#!/usr/bin/env bash
# Build the wheelhouse the image installs from: SkyCart's wheel and the wheels of all its
# dependencies, by `pip wheel` on this machine (PYTHON, default python3), into DIR.
#
# pip resolves for the Python that runs it, and dependencies can hang on its exact version (redis
# needs async-timeout below Python 3.11.3, say). So when the base image BASE is in local storage,
# its own interpreter then resolves against the wheelhouse, offline, and every requirement it
# misses is added here, until it finds them all.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${1:?usage: wheelhouse.sh DIR [BASE_IMAGE]}
BASE=${2:-}
PYTHON=${PYTHON:-python3}
LOG="$DIR.log"
NEW="$DIR.new"

rm -rf "$NEW"
mkdir -p "$NEW"
: > "$LOG"

wheel() {
  "$PYTHON" -m pip wheel --disable-pip-version-check --wheel-dir "$NEW" "$@" >> "$LOG" 2>&1 \
    || { tail -n 30 "$LOG" >&2; exit 1; }
}

finish() {
  rm -rf "$DIR"
  mv "$NEW" "$DIR"
  exit 0
}

echo "pip wheel . -> $DIR"
# setuptools' scratch folders: a module deleted from src/ would otherwise live on in the wheel.
rm -rf build/lib build/bdist.*
wheel .

if [ -n "$BASE" ] && command -v podman >/dev/null && podman image exists "$BASE"; then
  for _ in 1 2 3 4 5 6 7 8; do
    # The wheels are mounted read-only and the container has no network: pip sees nothing else.
    if missing=$(podman run --rm --pull=never --network=none --volume "$(realpath "$NEW")":/wheels:ro "$BASE" \
        sh -c 'python3 -m venv /tmp/venv && /tmp/venv/bin/pip install --disable-pip-version-check --dry-run \
               --quiet --no-index --find-links=/wheels /wheels/skycart-*.whl' 2>&1); then
      echo "the wheelhouse is complete for $BASE's Python"
      finish
    fi
    requirement=$(sed -n 's/^ERROR: No matching distribution found for \([^;]*\).*/\1/p' <<< "$missing" | head -n 1)
    if [ -z "$requirement" ]; then
      echo "$missing" >&2
      exit 1
    fi
    echo "$BASE's Python also needs $requirement"
    wheel "$requirement"
  done
  echo "the wheelhouse is still incomplete for $BASE's Python" >&2
  exit 1
fi
finish
