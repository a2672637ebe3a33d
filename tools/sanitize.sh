#!/usr/bin/env bash
# Build fastdescent's extension with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# test suite against it (any pytest arguments given are passed on; default: the whole suite).
#
#   tools/sanitize.sh                      # fresh venv: pip installs the test extras too
#   SANITIZE_DEPS=/path/to/venv tools/sanitize.sh tests/test_plan.py
#                                          # borrow that venv's packages (numpy, torch, ...)
#
# The sanitized build lives in its own venv ($SANITIZE_DIR, default build/sanitize) and never
# touches the normal install. Python itself is not instrumented, so libasan is preloaded and
# leak detection is off (CPython keeps its objects alive until exit on purpose); any memory
# error or undefined behaviour in the C++ aborts the process, and pytest fails.
set -euo pipefail
cd "$(dirname "$0")/.."

dir="${SANITIZE_DIR:-build/sanitize}"
python="${PYTHON:-python3}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
venv="$dir/venv"
start=$SECONDS

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --upgrade pip
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
if [ -n "${SANITIZE_DEPS:-}" ]; then
  # Only the dependencies: the .pth line adds that venv's site-packages to sys.path without
  # running its own .pth files (so an editable fastdescent installed there stays out).
  "$SANITIZE_DEPS/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' \
    > "$site/sanitize-deps.pth"
else
  # The test dependencies (and a plain build, replaced below), once.
  rm -f "$site/sanitize-deps.pth"
  if [ ! -e "$dir/deps-installed" ]; then
    "$venv/bin/python" -m pip install --quiet scikit-build-core pybind11 ".[test]"
    touch "$dir/deps-installed"
  fi
fi

flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g"
echo "== building the extension with $flags"
"$venv/bin/python" -m pip install --quiet --no-build-isolation --force-reinstall --no-deps \
  -C cmake.build-type=RelWithDebInfo \
  -C "cmake.define.CMAKE_CXX_FLAGS=$flags" \
  -C "cmake.define.CMAKE_SHARED_LINKER_FLAGS=-fsanitize=address,undefined" \
  -C "build-dir=$dir/build" \
  .
echo "== built in $((SECONDS - start)) s"

# libstdc++ too: python does not link it, and unless it is loaded when ASan starts, ASan's
# wrapper of __cxa_throw finds no real one and aborts at the first C++ exception.
cxx="${CXX:-g++}"
export LD_PRELOAD="$("$cxx" -print-file-name=libasan.so):$("$cxx" -print-file-name=libstdc++.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
# The package under test is the sanitized install: run from outside the source tree.
cd "$dir"
"$venv/bin/python" -c 'import fastdescent._core as c, sys; print("extension:", c.__file__)'
# Deselected: the resident-set test (ASan keeps freed blocks in its quarantine, resident
# by design, so RSS grows by megabytes over a long run whatever the code does).
status=0
"$venv/bin/python" -m pytest -p no:cacheprovider -q --rootdir "$OLDPWD" \
  -k "not keep_memory_flat" "${@:-$OLDPWD/tests}" || status=$?
echo "== sanitized run finished in $((SECONDS - start)) s (exit $status)"
exit "$status"
