#!/usr/bin/env bash
# Run tools/memcheck_smoke.py (every optimizer, flag and dtype, refused calls, gradient
# kernels, native training loops, a checkpoint) under valgrind memcheck against the
# installed fastdescent. Exits non-zero on any memcheck error outside the interpreter
# (tools/valgrind-python.supp lists the interpreter's own). Extra arguments go to valgrind.
#
#   tools/memcheck.sh                 # python3 on PATH
#   PYTHON=/path/to/venv/bin/python tools/memcheck.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
start=$SECONDS
# PYTHONMALLOC=malloc: every allocation through malloc, so memcheck sees each one (and
# pymalloc's arenas raise no false alarms).
cd "$(mktemp -d)"
PYTHONMALLOC=malloc valgrind --tool=memcheck --error-exitcode=1 --num-callers=30 \
  --suppressions="$here/valgrind-python.supp" --leak-check=no "$@" \
  "$python" "$here/memcheck_smoke.py"
echo "== memcheck clean in $((SECONDS - start)) s"
