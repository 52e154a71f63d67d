#!/usr/bin/env bash
# Memory-safety check: build the extension with AddressSanitizer and
# UndefinedBehaviorSanitizer into a temporary directory (the normal install is left
# alone), then run the kernel and estimator tests against that build. Any sanitizer
# report, in the test process or in a subprocess it starts, fails the script.
#
# Usage: tests/sanitize.sh [pytest arguments]   (default: the kernel, property,
# network, estimator, model-file, boundary and fault tests that exist, without the slow
# ones; then the kernel and boundary tests again on the portable kernels, FASTMLP_ISA=
# generic, which every non-x86 build runs)
# Run by .ci/run; takes a few minutes (about one of them the instrumented build).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/fastmlp-sanitize.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "== building fastmlp with -fsanitize=address,undefined into $work/site"
# FASTMLP_SANITIZE (CMakeLists.txt) instruments the kernels at -O1 with one sanitizer;
# its generator expression does not take a comma-separated list, so UBSan goes in
# through CMAKE_C_FLAGS and the module's link flags.
# FASTMLP_WERROR makes a warning in the C sources an error: CI's one build that has it.
# Build with the installed scikit-build-core and Cython when there are (no network
# needed), in pip's isolated build environment otherwise.
isolation=--no-build-isolation
python -c "import scikit_build_core, Cython" 2>/dev/null || isolation=
pip install --quiet $isolation --no-deps --target "$work/site" \
  -Cbuild-dir="$work/build" -Ccmake.define.FASTMLP_SANITIZE=address \
  -Ccmake.define.CMAKE_C_FLAGS="-fsanitize=undefined -fno-sanitize-recover=all" \
  -Ccmake.define.CMAKE_MODULE_LINKER_FLAGS="-fsanitize=undefined" \
  -Ccmake.define.FASTMLP_WERROR=ON .
echo "   built in $((SECONDS - start)) s"

# An editable install puts an import hook ahead of PYTHONPATH; this sitecustomize (first
# on PYTHONPATH, so every interpreter the tests start loads it too) drops the hook, so
# that the instrumented build is the one imported.
printf '%s\n' 'import sys' \
  'sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]' \
  > "$work/site/sitecustomize.py"

generic=()
if [ "$#" -eq 0 ]; then
  # The kernel and estimator tests (whatever exists of them), without the slow ones and
  # without the RSS-growth test: ASan's quarantine keeps freed memory on purpose.
  for f in tests/test_kernels.py tests/test_properties.py tests/test_gradcheck.py \
           tests/test_network.py tests/test_mlp_behaviour.py tests/test_mlp_equivalence.py \
           tests/test_seeds.py tests/test_io.py tests/test_faults.py tests/test_threads.py \
           tests/test_boundary.py tests/test_bf16.py tests/test_bf16_network.py; do
    if [ -f "$f" ]; then set -- "$@" "$f"; fi
  done
  # ASan reserves terabytes of address space: no test that limits it can run here
  set -- "$@" -m "not slow" -k "not thousand_fit_predict_cycles and not workspace_does_not_grow"
  generic=(tests/test_kernels.py tests/test_boundary.py -k "not workspace_does_not_grow")
fi

preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
# ASan must be the first library loaded, before the interpreter's own (and libstdc++
# before any C++ extension, for ASan's exception interceptor); CPython leaks by design
# at exit, so leak detection is off. The first report stops the process with an error.
export LD_PRELOAD="$preload"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"

status=0
kernels=$(python -c "import fastmlp._kernels as k; print(k.__file__)") || status=$?
echo "== testing $kernels"
case "$kernels" in
  "$work"/site/*)
    # --capture=sys leaves file descriptor 2 alone, so a report printed just before the
    # sanitizer stops the process reaches the log instead of pytest's capture file.
    python -m pytest -q -p no:cacheprovider --capture=sys "$@" 2>&1 | tee "$work/log" \
      || status=$?
    if [ "${#generic[@]}" -gt 0 ]; then
      echo "== the same build on the portable kernels (FASTMLP_ISA=generic)"
      FASTMLP_ISA=generic python -m pytest -q -p no:cacheprovider --capture=sys \
        "${generic[@]}" 2>&1 | tee -a "$work/log" || status=$?
    fi
    if grep -qE "ERROR: AddressSanitizer|runtime error:" "$work/log"; then status=1; fi ;;
  *) echo "the sanitized build is not the one imported"; status=1 ;;
esac
unset LD_PRELOAD
echo "== sanitize.sh: $([ $status -eq 0 ] && echo clean || echo FAILED) in $((SECONDS - start)) s"
exit $status
