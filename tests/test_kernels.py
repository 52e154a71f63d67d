"""The C kernels against plain NumPy references.

Shapes are chosen to miss the SIMD width and the cache blocks on purpose (primes, 1,
sizes just past a block), both element types, every epilogue and every (output, loss)
pair; the optimiser steps are checked against scikit-learn's own optimiser classes.
"""
import functools

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer
from threadpoolctl import threadpool_limits

import numpy_reference
from fastmlp import _engine, _kernels

ACT = _kernels.ACT_CODES
LOSS = _kernels.LOSS_CODES
HIDDEN = list(_kernels.HIDDEN_ACT_CODES)  # from the C enum, as every table
SLOPE = 0.1
DTYPES = [np.float32, np.float64]


def tol(dtype, k=1):
    """(rtol, atol) for a result summed over k products in dtype."""
    if dtype == np.float32:
        return 2e-4, 2e-5 * np.sqrt(k)
    return 1e-11, 1e-12 * np.sqrt(k)


# ---- NumPy references ---------------------------------------------------------------

act_ref = functools.partial(numpy_reference.act_ref, slope=SLOPE)
dact_ref = functools.partial(numpy_reference.dact_ref, slope=SLOPE)

def loss_grad_ref(a, y, sw, out, loss, dtype):
    """(per-row weighted loss sum, delta = dl/dz) in float64, probabilities clipped to
    [eps, 1 - eps] of dtype as the kernel clips them."""
    a, y = a.astype(np.float64), y.astype(np.float64)
    eps = np.finfo(dtype).eps
    p = np.clip(a, eps, 1 - eps)
    with np.errstate(divide="ignore", invalid="ignore"):
        xlogy = lambda u, v: np.where(u == 0, 0.0, u * np.log(v))  # noqa: E731
        if loss == "squared_error":
            rows, dl = 0.5 * ((y - a) ** 2).sum(1), a - y
        elif loss == "absolute_error":
            rows, dl = np.abs(y - a).sum(1), np.sign(a - y)
        elif loss == "binary_log_loss":
            rows = -(xlogy(y, p) + xlogy(1 - y, 1 - p)).sum(1)
            dl = (p - y) / (p * (1 - p))
        elif loss == "categorical_log_loss":
            rows, dl = -xlogy(y, p).sum(1), -y / p
        else:  # poisson
            rows, dl = (xlogy(y, y / a) - y + a).sum(1), 1 - y / a
    if out == "softmax":
        delta = a * (dl - (a * dl).sum(1, keepdims=True))
    else:
        delta = dl * dact_ref(a, out)
    canonical = {("identity", "squared_error"), ("logistic", "binary_log_loss"),
                 ("softmax", "categorical_log_loss"), ("exp", "poisson")}
    if (out, loss) in canonical:
        delta = a - y
    w = np.ones(len(a)) if sw is None else sw.astype(np.float64)
    return (w * rows).sum(), delta * w[:, None]


def forward_ref(coefs, intercepts, hidden, out, X):
    acts = [X.astype(np.float64)]
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        z = acts[-1] @ W.astype(np.float64) + b
        acts.append(act_ref(z, out if l == len(coefs) - 1 else hidden))
    return acts


def backprop_ref(coefs, intercepts, hidden, out, loss, X, Y, alpha, dtype):
    """Mean loss and gradients of one batch, as scikit-learn's _backprop computes them."""
    acts = forward_ref(coefs, intercepts, hidden, out, X)
    n = len(X)
    data, delta = loss_grad_ref(acts[-1], Y, None, out, loss, dtype)
    gW, gb = [None] * len(coefs), [None] * len(coefs)
    for l in range(len(coefs) - 1, -1, -1):
        W = coefs[l].astype(np.float64)
        gW[l] = (acts[l].T @ delta + alpha * W) / n
        gb[l] = delta.sum(0) / n
        if l:
            delta = (delta @ W.T) * dact_ref(acts[l], hidden)
    sumsq = sum((W.astype(np.float64) ** 2).sum() for W in coefs)
    return data / n + 0.5 * alpha * sumsq / n, gW, gb


def random_net(rng, sizes, dtype):
    coefs = [rng.normal(0, 1 / np.sqrt(i), (i, o)).astype(dtype)
             for i, o in zip(sizes[:-1], sizes[1:])]
    intercepts = [rng.normal(0, 0.1, o).astype(dtype) for o in sizes[1:]]
    return coefs, intercepts


# ---- GEMM ---------------------------------------------------------------------------

# K blocks are 1024 (float) and 512 (double) long: (30, 70, 1100) spans two of them;
# (40, 8, 1100) has one column of tiles, where A^T is read in place, and two K blocks;
# (3, 5, 4500) packs nothing, and spans two of its longer K blocks. Rows of A are read
# in place unless their stride is a multiple of 4 KiB: (50, 40, 256) reads them in place,
# (60, 20, 1024) packs them (float: 1 and 4 KiB strides; double: 2 and 8 KiB).
GEMM_SHAPES = [(1, 1, 1), (1, 17, 5), (7, 3, 13), (13, 31, 29), (37, 65, 100),
               (61, 97, 301), (200, 33, 530), (5, 2100, 3), (30, 70, 1100), (40, 8, 1100),
               (3, 5, 4500), (50, 40, 256), (60, 20, 1024)]


def operands(rng, M, N, K, transA, transB, dtype):
    A = rng.standard_normal((K, M) if transA else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if transB else (K, N)).astype(dtype)
    opA = A.T if transA else A
    opB = B.T if transB else B
    return A, B, opA.astype(np.float64) @ opB.astype(np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transA,transB", [(0, 0), (0, 1), (1, 0), (1, 1)])
@pytest.mark.parametrize("M,N,K", GEMM_SHAPES)
def test_gemm_matches_numpy_and_reference(M, N, K, transA, transB, dtype):
    rng = np.random.default_rng([M, N, K, transA, transB])
    A, B, expected = operands(rng, M, N, K, transA, transB, dtype)
    C0 = rng.standard_normal((M, N)).astype(dtype)
    C = _kernels.gemm(A, B, C0.copy(), transA=transA, transB=transB, beta=0.5)
    rtol, atol = tol(dtype, K)
    np.testing.assert_allclose(C, expected + 0.5 * C0, rtol=rtol, atol=atol)
    ref = _kernels.gemm(A, B, C0.copy(), transA=transA, transB=transB, beta=0.5,
                        reference=True)
    np.testing.assert_allclose(C, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", list(ACT))  # every activation of the enum
@pytest.mark.parametrize("M,N,K", [(1, 10, 7), (29, 37, 41), (130, 70, 300)])
def test_gemm_bias_activation_epilogue(M, N, K, act, dtype):
    rng = np.random.default_rng([M, N, K, ACT[act]])
    A, B, prod = operands(rng, M, N, K, 0, 0, dtype)
    A *= dtype(0.3)
    prod *= 0.3
    bias = rng.standard_normal(N).astype(dtype)
    C = _kernels.gemm(A, B, np.empty((M, N), dtype), bias=bias, act=ACT[act], slope=SLOPE)
    rtol, atol = tol(dtype, K)
    np.testing.assert_allclose(C, act_ref(prod + bias, act), rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("act", HIDDEN + ["exp"])
@pytest.mark.parametrize("M,N,K", [(1, 10, 7), (29, 37, 41), (130, 70, 300)])
def test_gemm_derivative_epilogue(M, N, K, act, dtype):
    """The backward product: C = (A B^T) * act'(y) with y a stored activation."""
    rng = np.random.default_rng([M, N, K, ACT[act], 1])
    A, B, prod = operands(rng, M, N, K, 0, 1, dtype)
    y = act_ref(rng.standard_normal((M, N)), act).astype(dtype)
    C = _kernels.gemm(A, B, np.empty((M, N), dtype), transB=True, act=ACT[act],
                      slope=SLOPE, dact_src=y)
    rtol, atol = tol(dtype, K)
    np.testing.assert_allclose(C, prod * dact_ref(y.astype(np.float64), act), rtol=rtol,
                               atol=atol * 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_rejects_mismatched_shapes(dtype):
    with pytest.raises(ValueError, match="shapes"):
        _kernels.gemm(np.ones((3, 4), dtype), np.ones((5, 2), dtype), np.ones((3, 2), dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_kernels_reject_arrays_that_are_not_c_contiguous(dtype):
    A, B, C = np.ones((40, 30), dtype), np.ones((30, 50), dtype), np.zeros((40, 50), dtype)
    for args in [(np.asfortranarray(A), B, C), (A, B, np.asfortranarray(C)),
                 (np.ones((40, 60), dtype)[:, ::2], B, C)]:
        with pytest.raises(ValueError, match="C-contiguous"):
            _kernels.gemm(*args)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,I,O,act", [(1, 5, 3, "relu"), (33, 17, 9, "tanh"),
                                       (10, 784, 30, "logistic")])
def test_dense_forward_and_backward(B, I, O, act, dtype):
    rng = np.random.default_rng([B, I, O])
    x = act_ref(rng.standard_normal((B, I)), act).astype(dtype)
    W = rng.standard_normal((I, O)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    out = _kernels.dense_forward(np.empty((B, O), dtype), x, W, b, ACT[act])
    x64, W64 = x.astype(np.float64), W.astype(np.float64)
    rtol, atol = tol(dtype, I)
    np.testing.assert_allclose(out, act_ref(x64 @ W64 + b, act), rtol=rtol, atol=atol)
    dout = rng.standard_normal((B, O)).astype(dtype)
    dinp, dW, db = np.empty_like(x), np.empty_like(W), np.empty_like(b)
    _kernels.dense_backward(dinp, dW, db, dout, x, W, ACT[act])
    np.testing.assert_allclose(dW, x64.T @ dout, rtol=rtol, atol=tol(dtype, B)[1])
    np.testing.assert_allclose(db, dout.sum(0), rtol=rtol, atol=tol(dtype, B)[1])
    np.testing.assert_allclose(dinp, (dout @ W64.T) * dact_ref(x64, act), rtol=rtol,
                               atol=tol(dtype, O)[1])


# ---- output delta and loss ----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("loss", list(LOSS))
@pytest.mark.parametrize("out", ["identity", "logistic", "softmax", "exp"])
def test_loss_grad_every_pair(out, loss, weighted, dtype):
    rng = np.random.default_rng([ACT[out], LOSS[loss], weighted])
    B, O = 23, 7
    z = rng.uniform(0.05, 0.95, (B, O)) if out == "identity" else rng.normal(0, 1, (B, O))
    a = act_ref(z, out).astype(dtype)
    y = rng.uniform(0, 1, (B, O))
    y[rng.random((B, O)) < 0.2] = 0  # exact zeros exercise xlogy
    y[rng.random((B, O)) < 0.1] = 1
    y = y.astype(dtype)
    sw = rng.uniform(0.5, 2, B).astype(dtype) if weighted else None
    expected_loss, expected_delta = loss_grad_ref(a, y, sw, out, loss, dtype)
    delta = np.empty_like(a)
    got = _kernels.loss_grad(delta, a, y, sw, ACT[out], LOSS[loss])
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    assert got == pytest.approx(expected_loss, rel=rtol)
    np.testing.assert_allclose(delta, expected_delta, rtol=rtol * 10, atol=rtol)


# ---- optimisers ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("P", [1, 37, 300001])
def test_sgd_update_matches_scikit_learn(P, nesterov, dtype):
    rng = np.random.default_rng([P, nesterov])
    w = rng.standard_normal(P)
    graw = rng.standard_normal(P)
    alpha, S, lr, mu = 1e-3, 13.0, 0.05, 0.9
    sk = SGDOptimizer([w.copy()], learning_rate_init=lr, momentum=mu, nesterov=nesterov)
    sk.velocities = [rng.standard_normal(P)]
    vel = sk.velocities[0].astype(dtype)
    expected = w + sk._get_updates([(graw + alpha * w) / S])[0]
    w_, g_ = w.astype(dtype), graw.astype(dtype)
    _kernels.sgd_update(w_, vel, g_, alpha, S, lr, mu, nesterov)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(w_, expected, rtol=rtol, atol=atol)
    np.testing.assert_allclose(vel, sk.velocities[0], rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("P", [1, 37, 300001])
def test_adam_update_matches_scikit_learn(P, dtype):
    rng = np.random.default_rng(P)
    w = rng.standard_normal(P)
    graw = rng.standard_normal(P)
    alpha, S = 1e-2, 7.0
    sk = AdamOptimizer([w.copy()], learning_rate_init=0.01)
    sk.t = 4
    sk.ms = [rng.standard_normal(P) * 0.1]
    sk.vs = [rng.uniform(0, 0.1, P)]
    m, v = sk.ms[0].astype(dtype), sk.vs[0].astype(dtype)
    expected = w + sk._get_updates([(graw + alpha * w) / S])[0]
    w_ = w.astype(dtype)
    _kernels.adam_update(w_, m, v, graw.astype(dtype), alpha, S, sk.learning_rate,
                         sk.beta_1, sk.beta_2, sk.epsilon)
    rtol, atol = tol(dtype)
    np.testing.assert_allclose(w_, expected, rtol=rtol * 10, atol=atol)
    np.testing.assert_allclose(m, sk.ms[0], rtol=rtol, atol=atol)
    np.testing.assert_allclose(v, sk.vs[0], rtol=rtol, atol=atol)


# ---- whole-network passes -----------------------------------------------------------

def classification(rng, n, d, k, dtype):
    X = rng.standard_normal((n, d)).astype(dtype)
    Y = np.eye(k, dtype=dtype)[rng.integers(0, k, n)]
    return X, Y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden", ["relu", "tanh", "logistic"])
def test_loss_and_grad_matches_backprop(hidden, dtype):
    rng = np.random.default_rng(ACT[hidden])
    coefs, intercepts = random_net(rng, [11, 9, 6, 4], dtype)
    X, Y = classification(rng, 31, 11, 4, dtype)
    spec = _engine.Spec(hidden, "softmax", "log_loss")
    loss, gW, gb = _engine.loss_and_grad(coefs, intercepts, spec, X, Y, alpha=0.01)
    ref_loss, ref_gW, ref_gb = backprop_ref(coefs, intercepts, hidden, "softmax",
                                            "categorical_log_loss", X, Y, 0.01, dtype)
    rtol, atol = tol(dtype, 31)
    assert loss == pytest.approx(ref_loss, rel=rtol)
    for got, ref in zip(gW + gb, ref_gW + ref_gb):
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("sizes, n, batch_size", [
    ([8, 10, 3], 30, 7),       # 7 does not divide 30 rows
    ([8, 10, 3], 30, 30),
    ([8, 10, 3], 30, 100),     # one batch smaller than batch_size
    ([40, 70, 3], 50, 16),     # W1 has several tiles, some partial; W2 rows are short
    ([12, 30, 3], 40, 10),     # the notes' shape: W1 rows between one and two vectors
    ([20, 33, 2], 2400, 1200),  # a batch longer than one K block of the GEMM (1024)
])
def test_epoch_train_matches_minibatch_reference(sizes, n, batch_size, solver, dtype):
    """Shuffled mini-batches, each followed by scikit-learn's optimiser step on the
    NumPy gradients: the epoch kernel steps the weights inside the weight-gradient
    product, and must take the same steps."""
    rng = np.random.default_rng(batch_size)
    coefs, intercepts = random_net(rng, sizes, dtype)
    X, Y = classification(rng, n, sizes[0], sizes[-1], dtype)
    idx = rng.permutation(n).astype(np.int64)
    alpha, lr = 1e-3, 0.05 if solver == "sgd" else 0.01
    params = [p.astype(np.float64) for p in coefs + intercepts]
    sk = (SGDOptimizer(params, learning_rate_init=lr, momentum=0.9, nesterov=True)
          if solver == "sgd" else AdamOptimizer(params, learning_rate_init=lr))
    L = len(coefs)
    expected_loss = 0.0
    for start in range(0, n, batch_size):
        rows = idx[start:start + batch_size]
        loss, gW, gb = backprop_ref(params[:L], params[L:], "relu", "softmax",
                                    "categorical_log_loss", X[rows], Y[rows], alpha, dtype)
        expected_loss += loss * len(rows)
        sk.update_params(params, gW + gb)
    opt = (_engine.SGDState(coefs + intercepts, learning_rate_init=lr, momentum=0.9)
           if solver == "sgd" else _engine.AdamState(coefs + intercepts, learning_rate_init=lr))
    spec = _engine.Spec("relu", "softmax", "log_loss")
    mean = _engine.train_epoch(coefs, intercepts, spec, X, Y, None, idx, batch_size, opt,
                               alpha=alpha)
    rtol, atol = tol(dtype, n)
    assert mean == pytest.approx(expected_loss / n, rel=rtol * 10)
    for got, ref in zip(coefs + intercepts, params):
        np.testing.assert_allclose(got, ref, rtol=rtol * 10, atol=atol * 10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_net_csr_equals_dense(dtype):
    rng = np.random.default_rng(0)
    coefs, intercepts = random_net(rng, [40, 16, 5], dtype)
    X = sp.random(600, 40, density=0.1, format="csr", random_state=0, dtype=dtype)
    spec = _engine.Spec("tanh", "softmax", "log_loss")
    dense = _engine.forward(coefs, intercepts, spec, _engine.kernel_X(X.toarray(), dtype))
    sparse = _engine.forward(coefs, intercepts, spec, _engine.kernel_X(X, dtype))
    np.testing.assert_array_equal(sparse, dense)
    ref = forward_ref(coefs, intercepts, "tanh", "softmax", X.toarray())[-1]
    np.testing.assert_allclose(dense, ref, *tol(dtype, 40))


# ---- determinism across thread counts -----------------------------------------------

def run_work(dtype):
    """A large GEMM (parallel region), a backward product, an epoch and a predict."""
    rng = np.random.default_rng(7)
    A, B, _ = operands(rng, 300, 260, 700, 0, 0, dtype)
    C = _kernels.gemm(A, B, np.empty((300, 260), dtype), bias=np.ones(260, dtype), act=3)
    # few columns of tiles: more threads than those split the rows as well
    Cn = _kernels.gemm(A, np.ascontiguousarray(B[:, :40]), np.empty((300, 40), dtype))
    Ct = _kernels.gemm(B, A, np.empty((260, 300), dtype), transA=True, transB=True)
    coefs, intercepts = random_net(rng, [700, 400, 10], dtype)  # 280,000 weights:
    # above the size from which the update runs in parallel
    X, Y = classification(rng, 1000, 700, 10, dtype)
    opt = _engine.SGDState(coefs + intercepts, learning_rate_init=0.01)
    spec = _engine.Spec("relu", "softmax", "log_loss")
    idx = rng.permutation(1000).astype(np.int64)
    _engine.train_epoch(coefs, intercepts, spec, X, Y, None, idx, 256, opt, alpha=1e-4)
    P = _engine.forward(coefs, intercepts, spec, X)
    return [C, Cn, Ct, P] + coefs + intercepts


@pytest.mark.parametrize("dtype", DTYPES)
def test_bit_identical_across_thread_counts(dtype):
    results = []
    for threads in (1, 2, 5, 12):  # 5 and 12: grids of 2 x 2 and 2 x 6 (float)
        with threadpool_limits(limits=threads, user_api="openmp"):
            results.append(run_work(dtype))
    for one, *more in zip(*results):
        for other in more:
            np.testing.assert_array_equal(one, other)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_updates_store_subnormal_results_as_zero(dtype):
    """A moment or weight that decays below the smallest normal number is stored as 0
    (subnormal arithmetic would slow every later pass down); normal values are untouched."""
    tiny = np.finfo(dtype).tiny
    P = 37
    start = np.full(P, 1.05 * tiny, dtype)   # 0.9 * start is subnormal
    start[::2] = 100 * tiny                  # 0.9 * start stays normal
    zeros = np.zeros(P, dtype)
    w, m, v = start.copy(), start.copy(), np.ones(P, dtype)
    _kernels.adam_update(w, m, v, zeros, 0.0, 1.0, 0.0, 0.9, 0.999, 1e-8)
    expected = np.where(start > 10 * tiny, (0.9 * start.astype(np.float64)).astype(dtype), 0)
    np.testing.assert_array_equal(m, expected)
    w, vel = start.copy(), start.copy()
    _kernels.sgd_update(w, vel, zeros, 0.0, 1.0, 0.0, 0.9, False)
    np.testing.assert_array_equal(vel, expected)
    assert not np.any((w != 0) & (np.abs(w) < tiny))
