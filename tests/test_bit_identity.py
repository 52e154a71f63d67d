"""Fits are the same bit for bit across refactorings of the kernels: every solver x hidden
activation x output unit, in float32 and float64, hashed and compared with the hashes
recorded in tests/fixtures/fit_hashes.json (one set per instruction set: the kernels of
each ISA round differently, and each is deterministic).

A change that is meant to alter the numbers (a new summation order, say) records new
hashes with `python tests/test_bit_identity.py --record` and says so in its commit.
"""
import functools
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import pytest
import scipy
from packaging.version import Version
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import fastmlp
from fastmlp import _kernels

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "fit_hashes.json")
ACTIVATIONS = ["identity", "logistic", "tanh", "relu", "leaky_relu"]
# The L-BFGS fits also run SciPy's L-BFGS-B, whose steps are not the kernels' to guard:
# SciPy 1.15 replaced its Fortran code by a C translation, and the float64 fits of the
# older code end a few bits apart. Their hashes were recorded with SciPy >= 1.15.
LBFGS_RECORDED_WITH = Version("1.15")


def _digest(model):
    h = hashlib.sha256()
    for a in model.coefs_ + model.intercepts_:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def fit_hashes():
    """{case: hash} for the fits this file guards (a few seconds)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:600] / 16, y[:600]
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for dtype in (np.float32, np.float64):
            Xd = X.astype(dtype)
            name = np.dtype(dtype).name
            for solver in ("sgd", "adam", "lbfgs"):
                for act in ACTIVATIONS:
                    common = dict(hidden_layer_sizes=(20,), activation=act, solver=solver,
                                  max_iter=4, batch_size=64, random_state=0)
                    out[f"{name} classifier {solver} {act}"] = _digest(
                        fastmlp.MLPClassifier(**common).fit(Xd, y))
                    out[f"{name} regressor {solver} {act}"] = _digest(
                        fastmlp.MLPRegressor(**common).fit(Xd, y / 10))
            for output in ("softmax", "logistic", "identity"):
                target = y if output != "identity" else np.eye(10)[y]
                net = fastmlp.Network([64, 20, 10], output=output, dtype=dtype, epochs=2,
                                      momentum=0.9, nesterov=True, alpha=1e-3,
                                      random_state=0).fit(Xd, target)
                out[f"{name} network {output}"] = _digest(net)
    return out


@functools.lru_cache(maxsize=1)
def _recorded_and_got():
    with open(FIXTURE) as f:
        recorded = json.load(f)
    isa = _kernels.isa()
    if isa not in recorded:
        pytest.skip(f"no hashes recorded for the {isa} kernels")
    return recorded[isa], fit_hashes()


@pytest.mark.parametrize("lbfgs", [
    False,
    pytest.param(True, marks=pytest.mark.skipif(
        Version(scipy.__version__) < LBFGS_RECORDED_WITH,
        reason=f"L-BFGS hashes recorded with SciPy >= {LBFGS_RECORDED_WITH}'s L-BFGS-B; "
               f"this is SciPy {scipy.__version__}")),
], ids=["sgd-adam-network", "lbfgs"])
def test_fits_are_bit_identical_to_the_recorded_ones(lbfgs):
    recorded, got = _recorded_and_got()
    assert set(got) == set(recorded)
    cases = [k for k in recorded if (" lbfgs " in k) == lbfgs]
    changed = sorted(k for k in cases if got[k] != recorded[k])
    assert not changed, f"{len(changed)} of {len(cases)} fits changed: {changed[:8]}"


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    # one interpreter per ISA: FASTMLP_ISA is read when the kernels first run
    import subprocess

    recorded = {}
    for isa in ("generic", "avx2", "avx512", "avx512_bf16", "amx_bf16"):
        code = ("import json, sys; sys.path.insert(0, 'tests'); import test_bit_identity as t;"
                "from fastmlp import _kernels; print(json.dumps([_kernels.isa(), t.fit_hashes()]))")
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=dict(os.environ, FASTMLP_ISA=isa), check=True)
        ran, hashes = json.loads(proc.stdout.strip().splitlines()[-1])
        if ran == isa:  # this CPU has it
            recorded[isa] = hashes
    with open(FIXTURE, "w") as f:
        json.dump(recorded, f, indent=1, sort_keys=True)
    print(f"recorded {sorted(recorded)} in {FIXTURE}")
