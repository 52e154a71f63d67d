"""The phase timers of the training batches (CMake's FASTMLP_PHASE_TIMERS, bench/phases.py):
compiled out of the normal build, and in a build with them, each phase of each batch
counted where it happens."""
import os
import subprocess
import sys
import textwrap

import pytest

from fastmlp import _kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_the_normal_build_has_no_phase_timers():
    assert _kernels.phase_ticks() is None


def test_the_phase_names_follow_the_c_enum():
    assert len(_kernels.PHASES) == _kernels.fm_phase.FM_PHASES
    assert _kernels.PHASES.index("batch") == _kernels.fm_phase.FM_PH_BATCH
    assert _kernels.PHASES.index("pair") == _kernels.fm_phase.FM_PH_PAIR


# In the build with the timers: three epochs of 1,000 rows in batches of 64 (16 batches,
# the last of 40 rows) through 20-16-12-3, float32 and bfloat16 products, and one read
# after nothing ran.
CHECK = textwrap.dedent("""
    import json, numpy as np
    from fastmlp import _engine, _kernels
    r = np.random.default_rng(0)
    X = r.standard_normal((1000, 20)).astype(np.float32)
    Y = np.eye(3, dtype=np.float32)[r.integers(0, 3, 1000)]
    out = {"isa": _kernels.isa()}
    for compute in (None, "bfloat16"):
        sizes = [20, 16, 12, 3]
        coefs = [_engine.aligned(r.standard_normal((i, o)).astype(np.float32) * 0.3)
                 for i, o in zip(sizes[:-1], sizes[1:])]
        intercepts = [_engine.aligned(np.zeros(o, np.float32)) for o in sizes[1:]]
        spec = _engine.Spec("relu", "softmax", "log_loss", compute_dtype=compute)
        opt = _engine.SGDState(coefs + intercepts, learning_rate_init=0.01, momentum=0.9)
        _kernels.phase_ticks()
        for epoch in range(3):
            idx = r.permutation(1000).astype(np.int64)
            _engine.train_epoch(coefs, intercepts, spec, _engine.kernel_X(X, X.dtype), Y,
                                None, idx, 64, opt, alpha=1e-4)
        out[str(compute)] = _kernels.phase_ticks()
    out["again"] = _kernels.phase_ticks()
    print(json.dumps(out))
""")


@pytest.fixture(scope="module")
def timed_build(tmp_path_factory):
    """The working tree built with FASTMLP_PHASE_TIMERS=ON into a temporary directory (the
    installed package is left alone)."""
    where = tmp_path_factory.mktemp("phase_timers")
    isolation = []
    try:
        import Cython  # noqa: F401
        import scikit_build_core  # noqa: F401
        isolation = ["--no-build-isolation"]
    except ImportError:
        pass
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *isolation,
                    "--no-deps", "--target", str(where / "site"),
                    f"-Cbuild-dir={where / 'build'}",
                    "-Ccmake.define.FASTMLP_PHASE_TIMERS=ON", ROOT],
                   check=True, capture_output=True)
    return where / "site"


@pytest.mark.slow
def test_a_build_with_the_timers_counts_every_phase_of_every_batch(timed_build):
    import json
    env = dict(os.environ, PYTHONPATH=str(timed_build))
    done = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True,
                          text=True, cwd=str(timed_build))
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    for compute in ("None", "bfloat16"):
        ticks = out[compute]
        assert ticks["batches"] == 3 * 16
        assert ticks["unit"] in ("cycles", "ns")
        for phase in ("forward", "loss", "back_out", "back_hidden", "back_first", "batch"):
            assert ticks[phase] > 0, (compute, phase)
        parts = sum(ticks[p] for p in _kernels.PHASES if p != "batch")
        assert parts <= ticks["batch"], compute
    # float32 pairs nothing; bfloat16 pairs where the kernels have bfloat16 instructions
    assert out["None"]["pair"] == 0
    bf16_isa = out["isa"] in ("avx512_bf16", "amx_bf16")
    assert (out["bfloat16"]["pair"] > 0) == bf16_isa
    # each read starts the count again
    assert out["again"]["batches"] == 0
    assert all(out["again"][p] == 0 for p in _kernels.PHASES)
