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
import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fastmlp import _kernels

ACT = _kernels.ACT_CODES
LOSS = _kernels.LOSS_CODES
HIDDEN = ["identity", "logistic", "tanh", "relu", "leaky_relu"]
SLOPE = 0.01


def _supported_isas():
    start = _kernels.isa()
    isas = []
    for name in ("generic", "avx2", "avx512"):
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
KERNEL_SETTINGS = settings(max_examples=60, deadline=None,
                           suppress_health_check=[HealthCheck.too_slow])


def eps(dtype):
    return float(np.finfo(dtype).eps)


def act_ref(z, act):
    """Activation of z (float64), the NumPy way."""
    if act == "logistic":
        return 1.0 / (1.0 + np.exp(-z))
    if act == "tanh":
        return np.tanh(z)
    if act == "relu":
        return np.maximum(z, 0.0)
    if act == "leaky_relu":
        return np.where(z < 0, SLOPE * z, z)
    if act == "exp":
        return np.exp(z)
    if act == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def dact_ref(y, act):
    """Derivative of the activation written in terms of its output y."""
    if act == "logistic":
        return y * (1 - y)
    if act == "tanh":
        return 1 - y * y
    if act == "relu":
        return (y != 0).astype(float)
    if act == "leaky_relu":
        return np.where(y > 0, 1.0, SLOPE)
    return np.ones_like(y)


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


def row_losses(y, a, loss):
    """Per-row loss l(y, a) of fastmlp.h, in float64 (a clipped like the kernels)."""
    def xlogy(u, v):
        return np.where(u == 0, 0.0, u * np.log(np.where(u == 0, 1.0, v)))
    p = np.clip(a, np.finfo(np.float64).eps, 1 - np.finfo(np.float64).eps)
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
    want = float(w @ row_losses(y64, a64, loss))
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
    # the step divides by sqrt(v): its relative error is a few eps of the inputs'
    assert_close(w, w64 - step, e * (np.abs(w64) + 4 * np.abs(step) + np.abs(w64 - step)),
                 "weights")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_refuse_wrong_dtype_and_layout(dtype):
    """The bindings' contract: a wrong dtype, a non-contiguous or a Fortran-ordered array
    raises ValueError/TypeError and is never read or written through a stale pointer."""
    A = np.ones((4, 3), dtype)
    B = np.ones((3, 5), dtype)
    C = np.zeros((4, 5), dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    for bad_args in [
        (A.astype(other), B, C),                 # mixed dtypes
        (A, B, C.astype(np.int64)),              # not a float
        (np.ones((4, 6), dtype)[:, ::2], B, C),  # strided view
        (np.asfortranarray(np.ones((4, 3), dtype)), B, C),  # Fortran order, input
        (A, B, np.asfortranarray(C)),            # Fortran order, output
    ]:
        with pytest.raises((ValueError, TypeError)):
            _kernels.gemm(*bad_args)
