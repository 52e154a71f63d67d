#!/usr/bin/env bash
# Memory-safety check: build the extension with AddressSanitizer and
# UndefinedBehaviorSanitizer into a temporary directory (the normal install is left
# alone), then run the kernel and estimator tests against that build. Any sanitizer
# report, in the test process or in a subprocess it starts, fails the script.
#
# Usage: tests/sanitize.sh [pytest arguments]   (default: the kernel, property,
# network, estimator and model-file tests that exist, without the slow ones)
# Run by .ci/run; takes a few minutes (most of it the instrumented build).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/fastmlp-sanitize.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== building fastmlp with -fsanitize=address,undefined into $work/site"
# FASTMLP_SANITIZE (CMakeLists.txt) instruments the kernels at -O1 with one sanitizer;
# its generator expression does not take a comma-separated list, so UBSan goes in
# through CMAKE_C_FLAGS and the module's link flags.
pip install --quiet --no-build-isolation --no-deps --target "$work/site" \
  -Cbuild-dir="$work/build" -Ccmake.define.FASTMLP_SANITIZE=address \
  -Ccmake.define.CMAKE_C_FLAGS="-fsanitize=undefined -fno-sanitize-recover=all" \
  -Ccmake.define.CMAKE_MODULE_LINKER_FLAGS="-fsanitize=undefined" .
echo "   built in $((SECONDS - start)) s"

if [ "$#" -eq 0 ]; then
  set --
  for f in tests/test_kernels.py tests/test_properties.py tests/test_network.py \
           tests/test_multilayer_perceptron.py tests/test_io.py; do
    [ -f "$f" ] && set -- "$@" "$f"
  done
  set -- "$@" -m "not slow"
fi

preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
mkdir -p "$work/reports"
# ASan must be the first library loaded, before the interpreter's own (and libstdc++
# before any C++ extension, for ASan's exception interceptor); CPython leaks by design
# at exit, so leak detection is off. Reports go to files so that one printed
# by a subprocess (or swallowed by pytest's capture) still fails the run.
export LD_PRELOAD="$preload"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:log_path=$work/reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$work/reports/ubsan"
export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"

status=0
# An editable install puts an import hook ahead of PYTHONPATH; drop it so that the
# instrumented build is the one imported, and say which file that is.
python - "$@" <<'EOF' || status=$?
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
import fastmlp._kernels
print("== testing", fastmlp._kernels.__file__, flush=True)
if "/fastmlp-sanitize." not in fastmlp._kernels.__file__:
    sys.exit("the sanitized build is not the one imported")
import pytest
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", *sys.argv[1:]]))
EOF
unset LD_PRELOAD

if compgen -G "$work/reports/*" >/dev/null; then
  echo "== sanitizer reports:"
  cat "$work"/reports/*
  status=1
fi
echo "== sanitize.sh: $([ $status -eq 0 ] && echo clean || echo FAILED) in $((SECONDS - start)) s"
exit $status
