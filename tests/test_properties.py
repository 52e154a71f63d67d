"""Property tests (hypothesis).

Part 1: every C kernel against a plain NumPy reference, on generated shapes (1, primes,
sizes that cross the GEMM's cache blocks), in float32 and float64, on every instruction
set this CPU runs.

Part 2: the estimators driven with generated arrays of every dtype, layout and
pathology: the only outcomes allowed are a correct result or a ValueError/TypeError
whose message names the problem, and a call that fails leaves a fitted model unchanged.

`pytest tests/test_properties.py --hypothesis-show-statistics` prints how many cases
each property ran.
"""
import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

import numpy_reference
from fastmlp import _kernels

# The estimator properties fit for two epochs, which never converge: that warning is
# expected and says nothing about the property.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

ACT = _kernels.ACT_CODES
LOSS = _kernels.LOSS_CODES
HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu"]
SLOPE = 0.01


def _supported_isas():
    start = _kernels.isa()
    isas = []
    for name in ("generic", "avx2", "avx512", "avx512_bf16", "amx_bf16"):
        try:
            _kernels.set_isa(name)
        except ValueError:
            continue
        isas.append(name)
    _kernels.set_isa(start)
    return isas


ISAS = _supported_isas()


@pytest.fixture(autouse=True)
def _restore_isa():
    start = _kernels.isa()
    yield
    _kernels.set_isa(start)


PRIMES = [1, 2, 3, 5, 7, 11, 13, 17, 31, 37, 97, 193, 257, 263]
# Small sizes, primes, and occasionally sizes past the GEMM's register and cache blocks.
dims = st.one_of(st.integers(1, 20), st.sampled_from(PRIMES))
real_dtypes = st.sampled_from([np.float32, np.float64])
seeds = st.integers(0, 2**32 - 1)
KERNEL_SETTINGS = settings(max_examples=300, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow])


def eps(dtype):
    return float(np.finfo(dtype).eps)


act_ref = functools.partial(numpy_reference.act_ref, slope=SLOPE)
dact_ref = functools.partial(numpy_reference.dact_ref, slope=SLOPE)

def stored_activation(rng, shape, act, dtype):
    """Values that `act` can output, as the backward kernels receive them."""
    return act_ref(rng.uniform(-2, 2, shape), act).astype(dtype)


def matmul_tol(A, B, K, dtype):
    """Forward-error bound of a length-K dot product, elementwise."""
    return 2 * (K + 2) * eps(dtype) * (np.abs(A) @ np.abs(B)) + np.finfo(dtype).tiny


def assert_close(got, ref, tol, what):
    err = np.abs(got.astype(np.float64) - ref)
    bad = ~(err <= tol)
    assert not bad.any(), (
        f"{what}: {bad.sum()} of {bad.size} entries off, worst error "
        f"{err[bad].max()} vs tolerance {np.broadcast_to(tol, err.shape)[bad].min()}"
    )


# ---- Part 1: kernels ---------------------------------------------------------------

@KERNEL_SETTINGS
@given(isa=st.sampled_from(ISAS), dtype=real_dtypes, M=dims, N=dims, K=dims,
       transA=st.booleans(), transB=st.booleans(), beta=st.sampled_from([0.0, 1.0, -0.5]),
       epilogue=st.sampled_from(["none", "bias", "act", "bias+act", "dact"]),
       act=st.sampled_from(HIDDEN + ["softmax", "exp"]), reference=st.booleans(),
       seed=seeds)
def test_gemm_matches_numpy(isa, dtype, M, N, K, transA, transB, beta, epilogue, act,
                            reference, seed):
    _kernels.set_isa(isa)
    rng = np.random.default_rng(seed)
    A = rng.uniform(-1, 1, (K, M) if transA else (M, K)).astype(dtype)
    B = rng.uniform(-1, 1, (N, K) if transB else (K, N)).astype(dtype)
    C0 = rng.uniform(-1, 1, (M, N)).astype(dtype)
    if reference:  # the reference GEMM has no epilogue
        epilogue = "none"
    use_bias = "bias" in epilogue
    use_act = epilogue in ("act", "bias+act")
    if epilogue == "dact" and act in ("softmax", "exp"):
        act = "tanh"
    bias = rng.uniform(-1, 1, N).astype(dtype) if use_bias else None
    dsrc = stored_activation(rng, (M, N), act, dtype) if epilogue == "dact" else None
    C = C0.copy()
    _kernels.gemm(A, B, C, transA=transA, transB=transB, beta=beta, bias=bias,
                  act=ACT[act] if (use_act or dsrc is not None) else 0, slope=SLOPE,
                  dact_src=dsrc, reference=reference)

    opA = A.T.astype(np.float64) if transA else A.astype(np.float64)
    opB = B.T.astype(np.float64) if transB else B.astype(np.float64)
    z = beta * C0.astype(np.float64) + opA @ opB
    tol = matmul_tol(opA, opB, K, dtype) + abs(beta) * np.abs(C0) * 2 * eps(dtype)
    if use_bias:
        z = z + bias
        tol = tol + 2 * eps(dtype) * np.abs(z)
    if use_act:
        ref = act_ref(z, act)
        # the error in z moves the output by at most max|act'| * tol (exp: ~ref itself;
        # softmax: by the spread of the row's errors)
        slope_bound = {"exp": np.abs(ref) + 1, "softmax": 2 * np.abs(ref) + 1}.get(act, 1)
        row_tol = tol.max(axis=1, keepdims=True) if act == "softmax" else tol
        tol = slope_bound * row_tol + 8 * eps(dtype) * (np.abs(ref) + 1)
    elif dsrc is not None:
        d = dact_ref(dsrc.astype(np.float64), act)
        ref = z * d
        tol = tol * np.abs(d) + 4 * eps(dtype) * np.abs(ref)
    else:
        ref = z
    assert_close(C, ref, tol, f"gemm[{isa}]")


@KERNEL_SETTINGS
@given(isa=st.sampled_from(ISAS), dtype=real_dtypes, B=dims, I=dims, O=dims,
       act=st.sampled_from(HIDDEN + ["softmax", "exp"]), seed=seeds)
def test_dense_forward_matches_numpy(isa, dtype, B, I, O, act, seed):
    _kernels.set_isa(isa)
    rng = np.random.default_rng(seed)
    inp = rng.uniform(-1, 1, (B, I)).astype(dtype)
    W = rng.uniform(-1, 1, (I, O)).astype(dtype)
    b = rng.uniform(-1, 1, O).astype(dtype)
    out = np.full((B, O), np.nan, dtype=dtype)
    _kernels.dense_forward(out, inp, W, b, ACT[act], SLOPE)
    x64, W64 = inp.astype(np.float64), W.astype(np.float64)
    z = x64 @ W64 + b
    ref = act_ref(z, act)
    tz = matmul_tol(x64, W64, I + 1, dtype) + 2 * eps(dtype) * np.abs(b)
    if act == "softmax":
        tz = tz.max(axis=1, keepdims=True)
    bound = {"exp": np.abs(ref) + 1, "softmax": 2 * np.abs(ref) + 1}.get(act, 1)
    assert_close(out, ref, bound * tz + 8 * eps(dtype) * (np.abs(ref) + 1),
                 f"dense_forward[{isa}, {act}]")


@KERNEL_SETTINGS
@given(isa=st.sampled_from(ISAS), dtype=real_dtypes, B=dims, I=dims, O=dims,
       act=st.sampled_from(HIDDEN), first_layer=st.booleans(), seed=seeds)
def test_dense_backward_matches_numpy(isa, dtype, B, I, O, act, first_layer, seed):
    _kernels.set_isa(isa)
    rng = np.random.default_rng(seed)
    dout = rng.uniform(-1, 1, (B, O)).astype(dtype)
    inp = stored_activation(rng, (B, I), act, dtype)
    W = rng.uniform(-1, 1, (I, O)).astype(dtype)
    dW = np.full((I, O), np.nan, dtype=dtype)
    db = np.full(O, np.nan, dtype=dtype)
    dinp = None if first_layer else np.full((B, I), np.nan, dtype=dtype)
    _kernels.dense_backward(dinp, dW, db, dout, inp, W, ACT[act], SLOPE)
    d64, x64, W64 = (a.astype(np.float64) for a in (dout, inp, W))
    assert_close(dW, x64.T @ d64, matmul_tol(x64.T, d64, B, dtype), "dW")
    assert_close(db, d64.sum(0), (B + 2) * eps(dtype) * np.abs(d64).sum(0) + 1e-300, "db")
    if dinp is not None:
        g = dact_ref(x64, act)
        assert_close(dinp, (d64 @ W64.T) * g,
                     matmul_tol(d64, W64.T, O, dtype) * np.abs(g) + 1e-300, "dinp")


def row_losses(y, a, loss, clip=np.finfo(np.float64).eps):
    """Per-row loss l(y, a) of fastmlp.h, in float64, a clipped to [clip, 1 - clip] for
    the log losses (the kernels clip at the epsilon of their dtype)."""
    def xlogy(u, v):
        return np.where(u == 0, 0.0, u * np.log(np.where(u == 0, 1.0, v)))
    p = np.clip(a, clip, 1 - clip)
    if loss == "squared_error":
        return 0.5 * ((y - a) ** 2).sum(1)
    if loss == "absolute_error":
        return np.abs(y - a).sum(1)
    if loss == "binary_log_loss":
        return -(xlogy(y, p) + xlogy(1 - y, 1 - p)).sum(1)
    if loss == "categorical_log_loss":
        return -xlogy(y, p).sum(1)
    return (xlogy(y, y / a) - y + a).sum(1)  # poisson


OUTPUT_LOSS_PAIRS = [(o, l) for o in ("identity", "logistic", "softmax", "exp")
                     for l in LOSS]


@KERNEL_SETTINGS
@given(isa=st.sampled_from(ISAS), dtype=real_dtypes, B=dims,
       O=st.integers(1, 12), pair=st.sampled_from(OUTPUT_LOSS_PAIRS),
       weighted=st.booleans(), seed=seeds)
def test_loss_grad_is_the_derivative_of_the_loss(isa, dtype, B, O, pair, weighted, seed):
    """delta = d(w * l(y, act(z)))/dz, checked by central differences in float64, and
    the returned loss against the formulas of fastmlp.h."""
    _kernels.set_isa(isa)
    out_act, loss = pair
    rng = np.random.default_rng(seed)
    # outputs inside the loss's domain: probabilities for the log losses, positive
    # rates for Poisson
    low, high = -2, 2
    if loss in ("binary_log_loss", "categorical_log_loss") or (
            loss == "poisson" and out_act == "identity"):
        low, high = {"identity": (0.05, 0.95), "exp": (-3, -0.05)}.get(out_act, (low, high))
    z = rng.uniform(low, high, (B, O))
    a = act_ref(z, out_act).astype(dtype)
    if loss == "categorical_log_loss":
        y = np.eye(O)[rng.integers(0, O, B)]
    elif loss == "binary_log_loss":
        y = rng.integers(0, 2, (B, O)).astype(float)
    elif loss == "poisson":
        y = rng.integers(0, 4, (B, O)).astype(float)
    else:
        y = rng.uniform(-2, 2, (B, O))
    y = y.astype(dtype)
    sw = rng.uniform(0.1, 2.0, B).astype(dtype) if weighted else None
    delta = np.full((B, O), np.nan, dtype=dtype)
    got = _kernels.loss_grad(delta, a, y, sw, ACT[out_act], LOSS[loss])

    a64, y64 = a.astype(np.float64), y.astype(np.float64)
    w = np.ones(B) if sw is None else sw.astype(np.float64)
    want = float(w @ row_losses(y64, a64, loss, clip=eps(dtype)))
    assert abs(got - want) <= 1e3 * eps(dtype) * (abs(want) + 1)

    # the derivative, by central differences of the per-row loss through the activation
    z = np.log(a64 / (1 - a64)) if out_act == "logistic" else (
        np.log(a64) if out_act in ("exp", "softmax") else a64)
    h = 1e-6
    fd = np.empty((B, O))
    for j in range(O):
        step = np.zeros(O)
        step[j] = h
        fd[:, j] = (row_losses(y64, act_ref(z + step, out_act), loss)
                    - row_losses(y64, act_ref(z - step, out_act), loss)) / (2 * h)
    fd *= w[:, None]
    scale = np.abs(fd) + np.abs(a64) + np.abs(y64) + 1
    assert_close(delta, fd, (1e-5 if dtype == np.float64 else 2e-3) * scale,
                 f"loss_grad[{isa}, {out_act}, {loss}]")


update_sizes = st.one_of(st.integers(1, 300), st.sampled_from([65537, 70001]))


@KERNEL_SETTINGS
@given(isa=st.sampled_from(ISAS), dtype=real_dtypes, P=update_sizes,
       alpha=st.sampled_from([0.0, 1e-4, 0.5]), S=st.floats(0.5, 300),
       lr=st.floats(1e-4, 1.0), momentum=st.sampled_from([0.0, 0.5, 0.9]),
       nesterov=st.booleans(), seed=seeds)
def test_sgd_update_matches_numpy(isa, dtype, P, alpha, S, lr, momentum, nesterov, seed):
    _kernels.set_isa(isa)
    rng = np.random.default_rng(seed)
    w, vel, graw = (rng.uniform(-1, 1, P).astype(dtype) for _ in range(3))
    w64, v64, g64 = (x.astype(np.float64) for x in (w, vel, graw))
    _kernels.sgd_update(w, vel, graw, alpha, S, lr, momentum, nesterov)
    g = (g64 + alpha * w64) / S
    v_ref = momentum * v64 - lr * g
    w_ref = w64 + (momentum * v_ref - lr * g if nesterov else v_ref)
    e = 16 * eps(dtype)
    assert_close(vel, v_ref, e * (np.abs(v64) + lr * (np.abs(g64) + alpha * np.abs(w64)) / S
                                  + np.abs(v_ref)), "velocity")
    assert_close(w, w_ref, e * (np.abs(w64) + np.abs(v64) + lr * (np.abs(g64) + np.abs(w64))
                                / S + np.abs(w_ref)), "weights")


@KERNEL_SETTINGS
@given(isa=st.sampled_from(ISAS), dtype=real_dtypes, P=update_sizes,
       alpha=st.sampled_from([0.0, 1e-4, 0.5]), S=st.floats(0.5, 300),
       lr_t=st.floats(1e-5, 0.1), beta1=st.sampled_from([0.0, 0.9]),
       beta2=st.sampled_from([0.9, 0.999]), seed=seeds)
def test_adam_update_matches_numpy(isa, dtype, P, alpha, S, lr_t, beta1, beta2, seed):
    _kernels.set_isa(isa)
    rng = np.random.default_rng(seed)
    w, m, graw = (rng.uniform(-1, 1, P).astype(dtype) for _ in range(3))
    v = rng.uniform(0, 1, P).astype(dtype)
    w64, m64, v64, g64 = (x.astype(np.float64) for x in (w, m, v, graw))
    eps_adam = 1e-8
    _kernels.adam_update(w, m, v, graw, alpha, S, lr_t, beta1, beta2, eps_adam)
    g = (g64 + alpha * w64) / S
    m_ref = beta1 * m64 + (1 - beta1) * g
    v_ref = beta2 * v64 + (1 - beta2) * g * g
    step = lr_t * m_ref / (np.sqrt(v_ref) + eps_adam)
    e = 32 * eps(dtype)
    assert_close(m, m_ref, e * (np.abs(m64) + np.abs(g) + 1e-30), "first moment")
    assert_close(v, v_ref, e * (v64 + g * g + 1e-30), "second moment")
    # the step is lr_t * m / sqrt(v): m's rounding (bounded above, and large relative to m
    # itself when beta1*m and (1-beta1)*g cancel) is scaled by lr_t / sqrt(v)
    m_err = (np.abs(m64) + np.abs(g)) * lr_t / (np.sqrt(v_ref) + eps_adam)
    assert_close(w, w64 - step,
                 e * (np.abs(w64) + 4 * np.abs(step) + np.abs(w64 - step) + m_err), "weights")


def _gemm_operands(dtype):
    # large enough (> 1 KiB) that a freed temporary goes back to malloc, where the
    # AddressSanitizer build (tests/sanitize.sh) sees any use after free
    return np.ones((40, 30), dtype), np.ones((30, 50), dtype), np.zeros((40, 50), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_refuse_wrong_dtype_and_strides(dtype):
    """The bindings' contract: a wrong dtype or a strided array raises."""
    A, B, C = _gemm_operands(dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    for bad_args in [(A.astype(other), B, C), (A, B, C.astype(np.int64)),
                     (np.ones((40, 60), dtype)[:, ::2], B, C)]:
        with pytest.raises((ValueError, TypeError)):
            _kernels.gemm(*bad_args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_refuse_fortran_order(dtype):
    A, B, C = _gemm_operands(dtype)
    for bad_args in [(np.asfortranarray(A), B, C), (A, B, np.asfortranarray(C))]:
        with pytest.raises((ValueError, TypeError)):
            _kernels.gemm(*bad_args)


# ---- Part 2: the estimators under generated input ------------------------------------

import copy  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import warnings  # noqa: E402

from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from fastmlp import MLPClassifier, MLPRegressor, Network  # noqa: E402

NUMERIC_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64", "float16", "float32", "float64"]
X_DTYPES = NUMERIC_DTYPES + ["complex64", "complex128", "object-numbers", "object-strings",
                             "object-none"]
LAYOUTS = ["C", "F", "strided", "memmap", "memmap-readonly", "readonly"]
SCALES = [1.0, 1e-30, 1e-310, 1e30, 1e300]
# What each kind of bad input must be called in the error message (any one of the words,
# case-insensitive); "diverged" may end any training call.
PROBLEM_WORDS = {
    "no rows": ["0 sample"],
    "no features": ["0 feature"],
    "nan": ["nan"],
    "inf": ["infinity"],
    "overflow": ["infinity", "too large"],
    "complex": ["complex"],
    "strings": ["could not convert", "string"],
    "feature count": ["features"],
    "mixed labels": ["not supported between instances", "label type", "mix"],
    "unseen labels": ["classes"],
    "one class": ["class"],
    "class count": ["classes"],
    "diverged": ["diverged"],
}
LABEL_POOLS = {
    "int": np.array([3, -1, 7]),
    "str": np.array(["cat", "dog", "emu"]),
    "float": np.array([0.0, 1.0, 2.0]),  # integral: non-integral floats are continuous
    "bool": np.array([False, True]),
    "object-str": np.array(["cat", "dog", "emu"], dtype=object),
    "mixed": np.array([1, "dog", 2.5], dtype=object),
}
ESTIMATORS = ["mlp-classifier", "mlp-regressor", "network-classifier", "network-regressor"]
ESTIMATOR_SETTINGS = settings(max_examples=1000, deadline=None,
                              suppress_health_check=list(HealthCheck),
                              phases=[Phase.explicit, Phase.reuse, Phase.generate,
                                      Phase.shrink])
_MEMMAP_DIR = tempfile.mkdtemp(prefix="fastmlp-properties-")


@pytest.fixture(scope="module", autouse=True)
def _remove_memmap_files():
    yield
    shutil.rmtree(_MEMMAP_DIR, ignore_errors=True)


def make_estimator(kind, d, n_classes):
    if kind == "mlp-classifier":
        return MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    if kind == "mlp-regressor":
        return MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    if kind == "network-classifier":
        return Network([max(d, 1), 4, max(n_classes, 2)], epochs=1, random_state=0)
    return Network([max(d, 1), 4, 1], output="identity", epochs=1, random_state=0)


def make_X(n, d, dtype, layout, scale, special, seed):
    """An (n, d) X and the problems it carries (keys of PROBLEM_WORDS)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, d))
    problems = set()
    if dtype == "bool":
        X = base > 0
    elif dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        X = rng.integers(info.min, info.max, (n, d), dtype=dtype, endpoint=True)
    elif dtype.startswith("complex"):
        X = (base + 1j * rng.standard_normal((n, d))).astype(dtype)
        problems.add("complex")
    elif dtype.startswith("object"):
        X = base.astype(object)
        if dtype == "object-strings" and X.size:
            X.flat[rng.integers(X.size)] = "x"
            problems.add("strings")
        if dtype == "object-none" and X.size:
            X.flat[rng.integers(X.size)] = None
            problems.add("nan")
    else:
        with np.errstate(over="ignore"):
            X = (base * scale).astype(dtype)
    if special and X.size and X.dtype.kind in "fcO" and "strings" not in problems:
        X.flat[rng.integers(X.size)] = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}[special]
    if X.dtype.kind in "fc":  # NaN and inf put there, or scale overflowing float16/32
        problems |= {"nan"} if np.isnan(X).any() else set()
        problems |= {"inf"} if np.isinf(X).any() else set()
    elif X.dtype.kind == "O" and special and "strings" not in problems and X.size:
        problems.add("nan" if special == "nan" else "inf")
    if n == 0:
        problems.add("no rows")
    if d == 0:
        problems.add("no features")
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "strided":
        wide = np.empty((n, 2 * d), dtype=X.dtype)
        wide[:, ::2] = X
        X = wide[:, ::2]
    elif layout.startswith("memmap") and X.dtype.kind != "O" and X.size:
        path = tempfile.mktemp(dir=_MEMMAP_DIR, suffix=".npy")
        np.save(path, X)
        X = np.load(path, mmap_mode="r" if layout == "memmap-readonly" else "r+")
    elif layout == "readonly":
        X = X.copy()
        X.flags.writeable = False
    return X, problems


def canonical_dtype(X, model, training):
    """The floating type fastmlp computes in for X, as scikit-learn's validation and
    NumPy's promotion decide it."""
    if isinstance(model, Network):
        return np.dtype(model.dtype)
    if training:  # validate_data(dtype=(float64, float32))
        return np.dtype(np.float32 if X.dtype == np.float32 else np.float64)
    promoted = np.result_type(X.dtype, model.coefs_[0].dtype)
    return np.dtype(np.float32 if promoted == np.float32 else np.float64)


def overflow(X, dtype):
    """True when a finite X does not fit in dtype (1e300 as float32)."""
    if X.dtype.kind not in "fO" or X.size == 0:
        return False
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            a = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError):  # strings: not a number at all
            return False
        return bool(np.isfinite(a).all() and not np.isfinite(a.astype(dtype)).all())


def make_y(kind, n, labels, seed, foreign):
    rng = np.random.default_rng(seed + 1)
    problems = set()
    if kind.endswith("regressor"):
        return rng.standard_normal(n), problems
    pool = LABEL_POOLS[labels]
    y = pool[rng.integers(0, len(pool), n)]
    if labels == "mixed" and not all(isinstance(v, str) for v in y):
        # an object array of labels other than strings alone: scikit-learn's target
        # types have no name for it
        problems.add("mixed labels")
    if foreign and n:
        y = y.astype(object)
        y[0] = "stranger"
        problems |= {"unseen labels", "mixed labels"}
    n_labels = len(np.unique(y.astype(str)))
    if n_labels < 2:
        problems.add("one class")
    if kind == "network-classifier" and n_labels != len(pool):
        problems.add("class count")  # its output layer has one unit per label of the pool
    return y, problems


def snapshot(model):
    """The weights and the training record of a fitted model. (n_iter_ is checked by
    test_faults.py: MLPClassifier/MLPRegressor reset it at the start of each call.)"""
    return ([c.copy() for c in model.coefs_] + [b.copy() for b in model.intercepts_],
            len(model.loss_curve_), getattr(model, "t_", None))


def assert_unchanged(model, before):
    after = snapshot(model)
    assert all(np.array_equal(a, b) for a, b in zip(before[0], after[0])), \
        "a failed call changed the weights"
    assert before[1:] == after[1:], "a failed call changed loss_curve_ or t_"


def assert_named(exc, problems):
    words = [w for p in problems for w in PROBLEM_WORDS[p]]
    message = str(exc).lower()
    assert any(w in message for w in words), (
        f"{type(exc).__name__}({str(exc)[:200]!r}) does not name any of {sorted(problems)}")


def fitted(kind, d, labels):
    """A model of `kind` fitted on clean data with d features (labels from the pool)."""
    n_classes = len(LABEL_POOLS[labels])
    model = make_estimator(kind, d, n_classes)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, max(d, 1)))
    y = (rng.standard_normal(30) if kind.endswith("regressor")
         else LABEL_POOLS[labels][np.arange(30) % n_classes])
    return model.fit(X, y)


clean_labels = st.sampled_from(["int", "str", "float", "bool", "object-str"])
def mostly(common, rare):
    """A strategy that picks from `common` three times as often as from `rare`."""
    return st.sampled_from(list(common) * 3 + list(rare))


# Each pathology is drawn now and then, so that most cases carry one problem or none.
estimator_inputs = dict(
    kind=st.sampled_from(ESTIMATORS), n=mostly([1, 2, 3, 7, 12, 37, 500], [0]),
    d=mostly([1, 2, 3, 5], [0]), dtype=mostly(NUMERIC_DTYPES, X_DTYPES[12:]),
    layout=st.sampled_from(LAYOUTS), scale=mostly([1.0], SCALES[1:]),
    special=mostly([None], ["nan", "inf", "-inf"]), seed=seeds)


def run_and_check(call, reference, model, problems, refits=False):
    """Run call(); it must either succeed with the reference's result, or raise a
    ValueError/TypeError that names one of the problems, leaving model unchanged. The
    one exception: a fit (refits) that diverges has replaced the model, and keeps the
    finite weights of its last finite epoch."""
    before = snapshot(model)
    with warnings.catch_warnings():
        # expected: the two-epoch fits never converge, and NumPy's checks of generated
        # inf, nan and overflowing values warn; any other warning is reported
        warnings.simplefilter("ignore", ConvergenceWarning)
        if problems & {"nan", "inf", "overflow"}:
            warnings.filterwarnings("ignore", r"(invalid value|overflow) encountered",
                                    RuntimeWarning)
        try:
            result = call()
        except (ValueError, TypeError) as exc:
            diverged = "diverged" in str(exc)
            event(f"refused: {type(exc).__name__} "
                  f"({'diverged' if diverged else ', '.join(sorted(problems))})")
            assert_named(exc, problems | {"diverged"})
            if diverged and refits:
                assert all(np.isfinite(a).all() for a in model.coefs_ + model.intercepts_)
            else:
                assert_unchanged(model, before)
            return
    assert not problems - {"one class", "class count"}, \
        f"accepted input with {sorted(problems)}"
    event("accepted" + (f" ({', '.join(sorted(problems))})" if problems else ""))
    reference(result)


@ESTIMATOR_SETTINGS
@given(labels=mostly(list(LABEL_POOLS)[:-1], ["mixed"]), foreign=mostly([False], [True]),
       incremental=st.booleans(), **estimator_inputs)
def test_training_on_generated_input(kind, n, d, dtype, layout, scale, special, seed,
                                     labels, foreign, incremental):
    """fit / partial_fit: a result bit-identical to training on a clean C-contiguous
    copy in the computing dtype, or a ValueError/TypeError naming the problem with the
    fitted model unchanged."""
    if incremental and labels == "mixed":
        labels = "str"  # the model to continue must have been fitted
    model = fitted(kind, d, labels if labels != "mixed" else "str")
    X, problems = make_X(n, d, dtype, layout, scale, special, seed)
    y, y_problems = make_y(kind, n, labels, seed, foreign and incremental)
    problems |= y_problems
    target = canonical_dtype(X, model, training=True)
    if overflow(X, target):
        problems.add("overflow")
    if incremental and d != model.n_features_in_:
        problems.add("feature count")
    if not incremental:
        problems.discard("unseen labels")
    twin = copy.deepcopy(model)

    def call():
        return model.partial_fit(X, y) if incremental else model.fit(X, y)

    def reference(result):
        assert result is model
        Xc = np.ascontiguousarray(np.asarray(X, dtype=target))
        (twin.partial_fit if incremental else twin.fit)(Xc, y)
        for a, b in zip(model.coefs_ + model.intercepts_, twin.coefs_ + twin.intercepts_):
            assert a.dtype == b.dtype and np.array_equal(a, b)
            assert np.isfinite(a).all()

    run_and_check(call, reference, model, problems, refits=not incremental)


@ESTIMATOR_SETTINGS
@given(labels=clean_labels, proba=st.booleans(), wrong_width=mostly([False], [True]),
       **estimator_inputs)
def test_prediction_on_generated_input(kind, n, d, dtype, layout, scale, special, seed,
                                       labels, proba, wrong_width):
    """predict / predict_proba: the result on a clean C-contiguous copy, or a
    ValueError/TypeError naming the problem."""
    model = fitted(kind, max(d, 1) + wrong_width, labels)
    X, problems = make_X(n, d, dtype, layout, scale, special, seed)
    if d != model.n_features_in_:
        problems.add("feature count")
    target = canonical_dtype(X, model, training=False)
    if overflow(X, target):
        problems.add("overflow")
    method = "predict_proba" if proba and kind.endswith("classifier") else "predict"

    def reference(result):
        want = getattr(model, method)(np.ascontiguousarray(np.asarray(X, dtype=target)))
        assert result.dtype == want.dtype and result.shape == want.shape
        assert np.array_equal(result, want, equal_nan=result.dtype.kind == "f")
        if method == "predict" and kind.endswith("classifier"):
            assert set(result) <= set(model.classes_)

    run_and_check(lambda: getattr(model, method)(X), reference, model, problems)
