"""Every instruction set this CPU runs trains and predicts the same network.

Each ISA runs in its own interpreter, forced by FASTMLP_ISA before the kernels load, so
the run-time dispatch is tested the way a user would force it.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastmlp import _kernels

ISAS = ["generic", "avx2", "avx512", "avx512_bf16", "amx_bf16"]

SCRIPT = """
import json, sys
import numpy as np
from fastmlp import _engine, _kernels

dtype = np.dtype(sys.argv[1])
rng = np.random.default_rng(0)
X = rng.standard_normal((203, 37)).astype(dtype)
Y = np.eye(5, dtype=dtype)[(X[:, :5] @ rng.standard_normal(5) > 0).astype(int)
                          + 2 * (X[:, 5] > 0)]
coefs = [rng.normal(0, 0.2, s).astype(dtype) for s in [(37, 41), (41, 19), (19, 5)]]
intercepts = [np.zeros(c.shape[1], dtype) for c in coefs]
spec = _engine.Spec("tanh", "softmax", "log_loss")
opt = _engine.SGDState(coefs + intercepts, learning_rate_init=0.05)
losses = [_engine.train_epoch(coefs, intercepts, spec, X, Y, None,
                              rng.permutation(203).astype(np.int64), 16, opt, alpha=1e-4)
          for _ in range(3)]
proba = _engine.forward(coefs, intercepts, spec, X)
print(json.dumps({"isa": _kernels.isa(), "losses": losses, "proba": proba.tolist()}))
"""


def supported(isa):
    current = _kernels.isa()
    try:
        _kernels.set_isa(isa)
    except ValueError:
        return False
    finally:
        _kernels.set_isa(current)
    return True


def run_forced(isa, dtype):
    env = dict(os.environ, FASTMLP_ISA=isa)
    done = subprocess.run([sys.executable, "-c", SCRIPT, dtype], env=env, check=True,
                          capture_output=True, text=True, timeout=120)
    return json.loads(done.stdout)


def test_set_isa_rejects_unknown_name():
    with pytest.raises(ValueError, match="not supported"):
        _kernels.set_isa("sse9")
    assert _kernels.isa() in ISAS


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_supported_isa_trains_and_predicts_alike(dtype):
    isas = [isa for isa in ISAS if supported(isa)]
    assert "generic" in isas
    if len(isas) == 1:
        pytest.skip("this CPU runs only the generic kernels: nothing to compare")
    runs = {isa: run_forced(isa, dtype) for isa in isas}
    rtol = 1e-4 if dtype == "float32" else 1e-10
    for isa, run in runs.items():
        assert run["isa"] == isa
        np.testing.assert_allclose(run["losses"], runs["generic"]["losses"], rtol=rtol)
        np.testing.assert_allclose(run["proba"], runs["generic"]["proba"], rtol=rtol,
                                   atol=rtol)


def test_an_unusable_forced_isa_warns_and_falls_back():
    """FASTMLP_ISA naming no instruction set of this CPU is said, not silently ignored."""
    env = dict(os.environ, FASTMLP_ISA="avx9000")
    out = subprocess.run(
        [sys.executable, "-c", "import fastmlp._engine, fastmlp._kernels as k; print(k.isa())"],
        env=env, capture_output=True, text=True, check=True)
    assert "FASTMLP_ISA='avx9000' is unknown or not supported" in out.stderr
    assert out.stdout.strip() in ISAS
