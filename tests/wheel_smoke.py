"""Smoke test of an installed fastmlp (a wheel or an sdist), run from outside the source
tree by tests/wheel_smoke.sh, tools/build_wheels.sh and cibuildwheel's test-command:
fastmlp is imported from the environment, fits scikit-learn's digits and predicts them.

    python wheel_smoke.py [--bundled-openmp] [--proba FILE]

--bundled-openmp: the OpenMP runtime in use must be the one the repaired wheel carries
(fastmlp.libs/libgomp*), as threadpoolctl sees it. --proba FILE: save predict_proba on
all the digits, for tests/wheel_smoke.sh to compare the instruction sets. FASTMLP_ISA,
when set, must be the instruction set the kernels run on.
"""
import argparse
import os
import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_info

import fastmlp
from fastmlp import MLPClassifier, _kernels

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--bundled-openmp", action="store_true")
parser.add_argument("--proba", metavar="FILE")
args = parser.parse_args()

assert fastmlp.__file__.startswith(sys.prefix), f"imported {fastmlp.__file__}, not the install"
isa = os.environ.get("FASTMLP_ISA")
assert isa in (None, _kernels.isa()), f"FASTMLP_ISA={isa} but the kernels run on {_kernels.isa()}"
openmp = [i for i in threadpool_info() if i["internal_api"] == "openmp"
          and os.path.basename(i["filepath"]).startswith("libgomp")]
if args.bundled_openmp:
    libs = os.path.join(os.path.dirname(os.path.dirname(fastmlp.__file__)), "fastmlp.libs")
    # threadpoolctl controls the bundled runtime (scikit-learn's wheel brings its own, too)
    openmp = [i for i in openmp if os.path.dirname(i["filepath"]) == libs]
    assert len(openmp) == 1, threadpool_info()

X, y = load_digits(return_X_y=True)
X = X / 16
model = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=40,
                      random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)  # 40 epochs are enough here
    model.fit(X[:1200], y[:1200])
accuracy = model.score(X[1200:], y[1200:])
assert accuracy > 0.9, accuracy
# the bfloat16 products too (on avx512_bf16 and amx_bf16 their own micro-kernels)
model16 = MLPClassifier(hidden_layer_sizes=(32,), learning_rate_init=0.01, max_iter=40,
                        random_state=0, compute_dtype="bfloat16")
with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    model16.fit(X[:1200], y[:1200])
accuracy16 = model16.score(X[1200:], y[1200:])
assert accuracy16 > 0.9, accuracy16
if args.proba:
    np.save(args.proba, model.predict_proba(X))
print(f"  Python {sys.version.split()[0]}, fastmlp {fastmlp.__version__} on "
      f"{_kernels.isa()}: test accuracy {accuracy:.4f} (bfloat16 {accuracy16:.4f}), OpenMP "
      f"{', '.join(os.path.basename(i['filepath']) for i in openmp) or 'none'}")
