"""What reaches the C kernels is checked first: wrong shapes, corrupt indices, overlapping
or misaligned arrays, allocation failures, zero-weight batches and fork() end in a clear
Python error or a correct result, never a crash, a hang or garbage.

Crashes would take the test run down with them, so the cases that once crashed run in a
fresh interpreter and the test checks how it ended.
"""
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from fastmlp import MLPClassifier, MLPRegressor, Network, _kernels

rng = np.random.default_rng(0)
X = rng.standard_normal((200, 6))
Y_CLASS = (X[:, 0] > 0).astype(int)
Y_REG = X[:, 0] + 0.5 * X[:, 1]


def _quiet(call, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return call(*args, **kw)


def _weights(model):
    return [a.copy() for a in model.coefs_ + model.intercepts_]


def _unchanged(before, model):
    after = _weights(model)
    return len(before) == len(after) and all(np.array_equal(a, b)
                                             for a, b in zip(before, after))


def _run(code, timeout=120):
    """Run code in a fresh interpreter; returns (exit code, stdout + stderr)."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=timeout)
    return proc.returncode, proc.stdout + proc.stderr


# ---- shapes through the public API ---------------------------------------------------

SETUP = """
    import warnings
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from fastmlp import MLPClassifier, MLPRegressor, Network
    warnings.simplefilter("ignore", ConvergenceWarning)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 6))
    y = X[:, 0] + 0.5 * X[:, 1]
    models = {
        "network": Network([6, 16, 1], output="identity", epochs=2, random_state=0),
        "mlp-regressor": MLPRegressor(hidden_layer_sizes=(16,), max_iter=2, random_state=0),
        "mlp-classifier": MLPClassifier(hidden_layer_sizes=(16,), max_iter=2, random_state=0),
    }
    model = models[NAME]
    target = (y > 0).astype(int) if NAME == "mlp-classifier" else y
    model.fit(X, target)
"""

# Each replaces the fitted weights with arrays of other shapes. On c181bf4 the first two
# read past the optimiser's moments (a false "diverged", or SIGSEGV for wider layers),
# the last read rows of X past their end.
RESHAPES = {
    "wider-hidden-layer": """
        out = model.coefs_[1].shape[1]
        model.coefs_ = [np.zeros((6, 600)), np.zeros((600, out))]
        model.intercepts_ = [np.zeros(600), np.zeros(out)]
    """,
    "narrower-hidden-layer": """
        out = model.coefs_[1].shape[1]
        model.coefs_ = [np.zeros((6, 3)), np.zeros((3, out))]
        model.intercepts_ = [np.zeros(3), np.zeros(out)]
    """,
    "more-inputs-than-X-has": """
        model.coefs_[0] = np.zeros((5000, 16))
    """,
}


@pytest.mark.parametrize("reshape", sorted(RESHAPES))
@pytest.mark.parametrize("name", ["network", "mlp-regressor", "mlp-classifier"])
def test_reshaped_weights_are_refused_by_partial_fit(name, reshape):
    code = "".join(textwrap.dedent(part) for part in (
        SETUP.replace("NAME", repr(name)), RESHAPES[reshape], """
    before = [a.copy() for a in model.coefs_ + model.intercepts_]
    try:
        model.partial_fit(X, target)
    except ValueError as exc:
        after = model.coefs_ + model.intercepts_
        assert all(np.array_equal(a, b) for a, b in zip(before, after))
        print("refused:", exc)
    else:
        print("accepted")
    """))
    status, out = _run(code)
    assert status == 0, out[-3000:]
    assert "refused:" in out and "layer widths" in out, out[-3000:]


@pytest.mark.parametrize("name", ["network", "mlp-regressor"])
def test_consistent_new_shape_restarts_the_optimiser(name):
    """A model given another hidden width together with that width's parameter (sizes,
    hidden_layer_sizes) trains on: its optimiser state starts afresh for the new shapes."""
    model = (Network([6, 16, 1], output="identity", epochs=2, random_state=0)
             if name == "network" else MLPRegressor(hidden_layer_sizes=(16,), max_iter=2, random_state=0))
    _quiet(model.fit, X, Y_REG)
    rng_w = np.random.default_rng(1)
    model.coefs_ = [0.1 * rng_w.standard_normal((6, 40)), 0.1 * rng_w.standard_normal((40, 1))]
    model.intercepts_ = [np.zeros(40), np.zeros(1)]
    model.set_params(**({"sizes": [6, 40, 1]} if name == "network"
                        else {"hidden_layer_sizes": (40,)}))
    _quiet(model.partial_fit, X, Y_REG)
    assert model.coefs_[0].shape == (6, 40)
    assert all(np.isfinite(a).all() for a in model.coefs_)


# ---- shapes at the bindings ----------------------------------------------------------

def _binding_args(dtype=np.float32, n=50, d=6, h=8, o=2, solver="adam"):
    r = np.random.default_rng(2)
    coefs = [r.standard_normal((d, h)).astype(dtype), r.standard_normal((h, o)).astype(dtype)]
    intercepts = [np.zeros(h, dtype), np.zeros(o, dtype)]
    params = coefs + intercepts
    return dict(coefs=coefs, intercepts=intercepts, hidden_act=3, out_act=0, loss=0,
                slope=0.01, X=r.standard_normal((n, d)).astype(dtype),
                Y=r.standard_normal((n, o)).astype(dtype), sw=None,
                idx=np.arange(n, dtype=np.int64), batch_size=10, loss_scale=1.0,
                solver=_kernels.SOLVER_CODES[solver], lr=0.01, momentum=0.9, nesterov=False,
                beta1=0.9, beta2=0.999, eps=1e-8, t=0, alpha=0.0,
                m=[np.zeros_like(p) for p in params], v=[np.zeros_like(p) for p in params])


EPOCH_BREAKAGES = {
    "moment-count": lambda a: a["m"].pop(),
    "moment-shape": lambda a: a["m"].__setitem__(0, np.zeros((6, 9), np.float32)),
    "second-moment-shape": lambda a: a["v"].__setitem__(3, np.zeros(3, np.float32)),
    "X-width": lambda a: a.__setitem__("X", np.zeros((50, 7), np.float32)),
    "Y-rows": lambda a: a.__setitem__("Y", np.zeros((49, 2), np.float32)),
    "Y-columns": lambda a: a.__setitem__("Y", np.zeros((50, 3), np.float32)),
    "Y-1d": lambda a: a.__setitem__("Y", np.zeros(50, np.float32)),
    "weights-rows": lambda a: a.__setitem__("sw", np.ones(49, np.float32)),
    "idx-length": lambda a: a.__setitem__("idx", np.arange(49, dtype=np.int64)),
    "idx-range": lambda a: a["idx"].__setitem__(3, 50),
    "idx-negative": lambda a: a["idx"].__setitem__(3, -1),
    "X-1d": lambda a: a.__setitem__("X", np.zeros(50, np.float32)),
    "coefs-1d": lambda a: a["coefs"].__setitem__(1, np.zeros(8, np.float32)),
}


@pytest.mark.parametrize("breakage", sorted(EPOCH_BREAKAGES))
def test_epoch_binding_checks_every_shape(breakage):
    args = _binding_args()
    EPOCH_BREAKAGES[breakage](args)
    before = [a.copy() for a in args["coefs"] + args["intercepts"]]
    with pytest.raises(ValueError):
        _kernels.epoch_train(**args)
    assert all(np.array_equal(a, b) for a, b in zip(before, args["coefs"] + args["intercepts"]))


def test_epoch_binding_runs_when_everything_fits():
    args = _binding_args()
    status, loss_sum, rows, t = _kernels.epoch_train(**args)
    assert (status, rows, t) == (0, 50, 5) and np.isfinite(loss_sum)


def _grad_args():
    a = _binding_args()
    return dict(coefs=a["coefs"], intercepts=a["intercepts"], hidden_act=3, out_act=0, loss=0,
                slope=0.01, X=a["X"], Y=a["Y"], sw=None, alpha=0.0, loss_scale=1.0,
                gW=[np.empty_like(c) for c in a["coefs"]],
                gb=[np.empty_like(b) for b in a["intercepts"]])


@pytest.mark.parametrize("breakage", ["gW-count", "gW-shape", "gb-shape", "X-width", "Y-rows",
                                      "sw-rows"])
def test_loss_and_grad_binding_checks_every_shape(breakage):
    args = _grad_args()
    {"gW-count": lambda: args["gW"].pop(),
     "gW-shape": lambda: args["gW"].__setitem__(1, np.empty((8, 3), np.float32)),
     "gb-shape": lambda: args["gb"].__setitem__(0, np.empty(9, np.float32)),
     "X-width": lambda: args.__setitem__("X", np.zeros((50, 5), np.float32)),
     "Y-rows": lambda: args.__setitem__("Y", np.zeros((51, 2), np.float32)),
     "sw-rows": lambda: args.__setitem__("sw", np.ones(10, np.float32))}[breakage]()
    with pytest.raises(ValueError):
        _kernels.loss_and_grad(**args)


def test_forward_binding_checks_X_and_out():
    a = _binding_args()
    out = np.empty((50, 2), np.float32)
    with pytest.raises(ValueError, match="features"):
        _kernels.forward_net(a["coefs"], a["intercepts"], 3, 0, 0.01,
                             np.zeros((50, 7), np.float32), out)
    with pytest.raises(ValueError, match="output array"):
        _kernels.forward_net(a["coefs"], a["intercepts"], 3, 0, 0.01, a["X"],
                             np.empty((50, 3), np.float32))


def test_corrupt_csr_structure_is_refused():
    a = _binding_args()
    Xs = sp.csr_matrix(a["X"])
    values, indices, indptr = Xs.data, Xs.indices.astype(np.int64), Xs.indptr.astype(np.int64)
    out = np.empty((50, 2), np.float32)
    bad_col = indices.copy()
    bad_col[5] = 6
    bad_ptr = indptr.copy()
    bad_ptr[-1] += 7
    for csr in [(values, bad_col, indptr, Xs.shape), (values, indices, bad_ptr, Xs.shape),
                (values, indices, indptr[:-1], Xs.shape)]:
        with pytest.raises(ValueError):
            _kernels.forward_net(a["coefs"], a["intercepts"], 3, 0, 0.01, csr, out)


def test_out_of_range_sparse_columns_are_refused_by_predict():
    model = _quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit, X, Y_CLASS)
    Xs = sp.csr_matrix(X[:20])
    Xs.indices[4] = 6_000_000  # scipy does not check this itself
    with pytest.raises(ValueError, match="column indices"):
        model.predict(Xs)


# ---- aliasing and alignment -----------------------------------------------------------

def test_outputs_overlapping_inputs_are_refused():
    A = np.ones((40, 40), np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        _kernels.gemm(A, A.T.copy(), A)
    W = np.ones((40, 40), np.float32)
    with pytest.raises(ValueError, match="overlaps"):
        _kernels.dense_forward(A[:, :40], A, W, np.zeros(40, np.float32), 0)


def test_misaligned_arrays_are_refused_by_the_kernels_and_copied_by_the_estimators():
    buf = np.zeros(4 * 64 * 8 + 1, np.uint8)
    Xm = np.frombuffer(buf.data, dtype=np.float32, count=64 * 8, offset=1).reshape(64, 8)
    assert not Xm.flags.aligned
    with pytest.raises(ValueError, match="aligned"):
        _kernels.gemm(Xm, np.ones((8, 4), np.float32), np.empty((64, 4), np.float32))
    net = Network.from_weights([np.ones((8, 3))], [np.zeros(3)], output="identity")
    np.testing.assert_array_equal(net.predict(Xm), net.predict(np.array(Xm)))


@pytest.mark.parametrize("offset", [0, 16])
def test_from_weights_never_trains_the_callers_arrays(offset):
    """Wherever the caller's arrays lie (on a cache line or not), the network trains its
    own copies (it trained the caller's arrays in place when they were 64-byte aligned)."""
    from fastmlp import _engine

    def placed(a):
        buf = _engine.aligned_empty((a.size * 8 + 64,), np.uint8)
        out = buf[offset:offset + a.nbytes].view(np.float64).reshape(a.shape)
        out[...] = a
        return out

    coefs = [placed(np.full((6, 4), 0.1)), placed(np.full((4, 2), 0.1))]
    intercepts = [placed(np.zeros(4)), placed(np.zeros(2))]
    given = [a.copy() for a in coefs + intercepts]
    net = Network.from_weights(coefs, intercepts, dtype=np.float64)
    _quiet(net.partial_fit, X, Y_CLASS)
    assert all(np.array_equal(a, b) for a, b in zip(coefs + intercepts, given))
    assert not np.array_equal(net.coefs_[0], given[0])


# ---- out of memory --------------------------------------------------------------------

def _in_new_thread(call):
    """Run call in a fresh thread (whose GEMM packing buffer is not allocated yet) and
    return what it returned or raised."""
    result = {}

    def target():
        try:
            result["value"] = call()
        except BaseException as exc:  # handed to the test thread
            result["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    t.join()
    return result


@pytest.fixture
def failing_allocations():
    """fail(count): allocations after the next `count` fail; always reset afterwards."""
    try:
        yield _kernels.fail_allocations_after
    finally:
        _kernels.fail_allocations_after(-1)


@pytest.mark.parametrize("count", [0, 1])
@pytest.mark.parametrize("name", ["network", "mlp-classifier-sgd", "mlp-regressor-adam"])
def test_partial_fit_out_of_memory_raises_and_keeps_the_model(name, count,
                                                              failing_allocations):
    """count 0: the epoch's workspace fails; 1: the GEMM packing buffer of a new thread."""
    model = {"network": lambda: Network([6, 16, 2], epochs=2, random_state=0),
             "mlp-classifier-sgd": lambda: MLPClassifier(hidden_layer_sizes=(16,), solver="sgd", max_iter=2,
                                                         random_state=0),
             "mlp-regressor-adam": lambda: MLPRegressor(hidden_layer_sizes=(16,), max_iter=2,
                                                        random_state=0)}[name]()
    y = Y_REG if name.startswith("mlp-regressor") else Y_CLASS
    _quiet(model.fit, X, y)
    before, n_iter = _weights(model), model.n_iter_

    def step():
        failing_allocations(count)
        try:
            return model.partial_fit(X, y)
        finally:
            failing_allocations(-1)

    result = _in_new_thread(step)
    assert isinstance(result.get("error"), MemoryError), result
    assert _unchanged(before, model) and model.n_iter_ == n_iter
    _quiet(model.partial_fit, X, y)  # and it trains on afterwards
    assert not _unchanged(before, model)


@pytest.mark.parametrize("count", [0, 1])
def test_lbfgs_out_of_memory_raises_memory_error(count, failing_allocations):
    def fit():
        failing_allocations(count)
        try:
            return MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=5, random_state=0).fit(X, Y_REG)
        finally:
            failing_allocations(-1)

    result = _in_new_thread(fit)
    assert isinstance(result.get("error"), MemoryError), result


@pytest.mark.parametrize("count", [0, 1])
def test_predict_out_of_memory_raises_memory_error(count, failing_allocations):
    model = _quiet(MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0).fit, X, Y_CLASS)

    def predict():
        failing_allocations(count)
        try:
            return model.predict_proba(X)
        finally:
            failing_allocations(-1)

    result = _in_new_thread(predict)
    assert isinstance(result.get("error"), MemoryError), result
    np.testing.assert_array_equal(_in_new_thread(lambda: model.predict_proba(X))["value"],
                                  model.predict_proba(X))


def test_gemm_out_of_memory_raises_memory_error(failing_allocations):
    """A product that packs (A^T) in a thread whose packing buffer cannot be had."""
    A = np.ones((20, 30), np.float32)
    B = np.ones((20, 40), np.float32)
    C = np.full((30, 40), np.nan, np.float32)

    def gemm():
        failing_allocations(0)
        try:
            return _kernels.gemm(A, B, C, transA=True)
        finally:
            failing_allocations(-1)

    assert isinstance(_in_new_thread(gemm).get("error"), MemoryError)


def test_prediction_workspace_does_not_grow_with_the_input_width_for_one_row():
    """Predict of one row allocates for one row (was 3 x 1024 rows x max width per
    thread): a 1-row predict of a 2^22-wide input needs no 50 MB buffer. Measured with
    the allocation hook: the forward pass makes exactly one allocation, and it succeeds
    when the process is limited to far less address space than the old buffer."""
    code = """
    import resource, numpy as np
    from fastmlp import Network
    d = 1 << 22
    net = Network.from_weights([np.zeros((d, 2), np.float32)], [np.zeros(2, np.float32)],
                               output="identity")
    x = np.ones((1, d), np.float32)
    net.predict(x)  # warm: imports, thread pool
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    used = int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + (24 << 20), hard))
    print("ok", net.predict(x))
    """
    status, out = _run(textwrap.dedent(code))
    assert status == 0 and "ok" in out, out[-3000:]


# ---- zero-weight mini-batches ---------------------------------------------------------

@pytest.mark.parametrize("name", ["network-sgd", "network-adam", "mlp-classifier-adam",
                                  "mlp-regressor-sgd"])
def test_zero_weight_batches_are_skipped(name):
    """The first batch has zero weights (shuffle off): the fit equals one on the other rows
    alone, bit for bit (was: 'Solver diverged ... lower the learning rate')."""
    kind, solver = name.rsplit("-", 1)
    make = {
        "network": lambda: Network([6, 12, 2], solver=solver, batch_size=20, epochs=4,
                                   shuffle=False, random_state=0),
        "mlp-classifier": lambda: MLPClassifier(hidden_layer_sizes=(12,), solver=solver, batch_size=20,
                                                max_iter=4, shuffle=False, random_state=0),
        "mlp-regressor": lambda: MLPRegressor(hidden_layer_sizes=(12,), solver=solver, batch_size=20,
                                              max_iter=4, shuffle=False, random_state=0,
                                              learning_rate_init=0.01),
    }[kind]
    y = Y_REG if kind == "mlp-regressor" else Y_CLASS
    sw = np.ones(len(X))
    sw[:20] = 0
    weighted = _quiet(make().fit, X, y, sample_weight=sw)
    alone = _quiet(make().fit, X[20:], y[20:])
    assert all(np.array_equal(a, b) for a, b in zip(_weights(weighted), _weights(alone)))
    np.testing.assert_array_equal(weighted.loss_curve_, alone.loss_curve_)


def test_all_zero_weights_say_what_is_wrong():
    with pytest.raises(ValueError, match="[Ss]ample weights"):
        Network([6, 4, 2], random_state=0).fit(X, Y_CLASS, sample_weight=np.zeros(len(X)))
    args = _binding_args()
    args["sw"] = np.zeros(50, np.float32)
    status, loss_sum, rows, t = _kernels.epoch_train(**args)
    assert rows == 0 and t == 0


# ---- fork ----------------------------------------------------------------------------

def _fork_child_work(queue):
    model, Xc, yc = _FORK_STATE
    proba = model.predict_proba(Xc)
    model.partial_fit(Xc, yc)
    queue.put((proba, _weights(model), _kernels.in_forked_child()))


_FORK_STATE = None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX only")
def test_forked_child_predicts_and_trains_like_the_parent():
    """After the parent ran parallel regions, a child made by fork() (multiprocessing's
    fork start method) predicts and trains to completion, with the parent's numbers (on
    c181bf4 it waited forever for OpenMP threads that did not survive the fork)."""
    global _FORK_STATE
    r = np.random.default_rng(3)
    Xc = r.standard_normal((4096, 256)).astype(np.float32)
    yc = (Xc[:, 0] > 0).astype(int)
    model = _quiet(MLPClassifier(hidden_layer_sizes=(256,), max_iter=2, random_state=0).fit, Xc, yc)
    # the parent: large enough products for a parallel region of every thread
    proba_parent = model.predict_proba(Xc)
    _FORK_STATE = (model, Xc, yc)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fork_child_work, args=(queue,))
    child.start()
    try:
        proba, weights, forked = queue.get(timeout=120)
    finally:
        child.join(timeout=10)
        if child.is_alive():
            os.kill(child.pid, signal.SIGKILL)
    assert forked and not _kernels.in_forked_child()
    np.testing.assert_array_equal(proba, proba_parent)
    model.partial_fit(Xc, yc)
    assert all(np.array_equal(a, b) for a, b in zip(weights, _weights(model)))


# ---- the generic kernels' packing buffer ----------------------------------------------

@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512", "avx512_bf16", "amx_bf16"])
def test_packed_products_with_long_K_on_every_isa(isa):
    """K >= KC with A packed (transA): the panels of every thread's packing buffer stay
    inside it (on c181bf4 the generic kernels wrote 16 bytes past it for one malloc
    placement in four; tests/sanitize.sh runs this under AddressSanitizer)."""
    before = _kernels.isa()
    try:
        _kernels.set_isa(isa)
    except ValueError:
        pytest.skip(f"this CPU has no {isa}")
    try:
        r = np.random.default_rng(4)
        for dtype, K in ((np.float32, 2100), (np.float64, 1100)):
            A = r.standard_normal((K, 37)).astype(dtype)
            B = r.standard_normal((K, 45)).astype(dtype)
            for _ in range(4):  # fresh threads: new buffers at new heap places
                C = np.empty((37, 45), dtype)
                res = _in_new_thread(lambda: _kernels.gemm(A, B, C, transA=True))
                assert "error" not in res, res
                np.testing.assert_allclose(C, A.T @ B, rtol=1e-4 if dtype == np.float32
                                           else 1e-10, atol=1e-3)
    finally:
        _kernels.set_isa(before)


# ---- float32 exp --------------------------------------------------------------------

def test_float32_exp_keeps_small_results():
    """exp output (the Poisson regressor's) in float32 is NumPy's down to the subnormals
    (c181bf4 flushed everything below 2^-124 to zero, normal floats included)."""
    z = np.linspace(-103.5, -80.0, 64, dtype=np.float32).reshape(-1, 1)
    out = np.empty_like(z)
    _kernels.dense_forward(out, z, np.ones((1, 1), np.float32), np.zeros(1, np.float32),
                           _kernels.ACT_CODES["exp"])
    ref = np.exp(z)
    assert (out > 0).all()
    normal = ref >= np.finfo(np.float32).tiny
    np.testing.assert_allclose(out[normal], ref[normal], rtol=2e-6)
    np.testing.assert_allclose(out[~normal], ref[~normal], rtol=0,
                               atol=2 * np.finfo(np.float32).smallest_subnormal)


def test_poisson_regressor_carries_on_where_exp_is_tiny():
    """One row's output far below exp(-86) (z = -90), with a positive target: training
    goes on and takes scikit-learn's step (c181bf4: 'Solver diverged'). The loss is
    finite (fastmlp forms y / a in double; scikit-learn's float32 y / a overflows to inf
    there, and it carries on with an infinite loss)."""
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor

    Xp = np.vstack([np.full((1, 2), -45.0), rng.standard_normal((63, 2))]).astype(np.float32)
    yp = (np.abs(rng.standard_normal(64)) + 0.5).astype(np.float32)
    losses = []
    for cls in (MLPRegressor, SkMLPRegressor):
        model = cls(hidden_layer_sizes=(1,), activation="identity", loss="poisson",
                    solver="sgd", learning_rate_init=1e-6, batch_size=64, random_state=0)
        _quiet(model.partial_fit, Xp, yp)
        model.coefs_ = [np.ones((2, 1), np.float32), np.ones((1, 1), np.float32)]
        model.intercepts_ = [np.zeros(1, np.float32), np.zeros(1, np.float32)]
        # scikit-learn's float32 y / a overflows here (its RuntimeWarning, expected); ours
        # must not warn
        with warnings.catch_warnings():
            if cls is SkMLPRegressor:
                warnings.filterwarnings("ignore", "overflow encountered", RuntimeWarning)
            else:
                warnings.simplefilter("error", RuntimeWarning)
            _quiet(model.partial_fit, Xp, yp)
        losses.append(model)
    ours, theirs = losses
    assert np.isfinite(ours.loss_) and ours.loss_ > 0
    assert not np.array_equal(ours.intercepts_[1], np.zeros(1))  # a step was taken
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-5)


# ---- the full-batch gradient in chunks -------------------------------------------------

@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
def test_full_batch_gradient_over_several_chunks(sparse):
    """L-BFGS's loss and gradient of 9,000 rows (two chunks of the workspace: 4,096 and
    4,904 rows, the gradients summed over both) equal a NumPy float64 reference, with
    sample weights and an L2 penalty."""
    from fastmlp import _engine

    r = np.random.default_rng(5)
    n, d, h, o, alpha = 9000, 5, 8, 3, 0.3
    Xg = r.standard_normal((n, d))
    Xg[r.random((n, d)) < 0.4] = 0
    Y = np.eye(o)[r.integers(0, o, n)]
    sw = r.random(n) + 0.5
    W1, W2 = r.standard_normal((d, h)), r.standard_normal((h, o))
    b1, b2 = r.standard_normal(h), r.standard_normal(o)
    a1 = np.maximum(Xg @ W1 + b1, 0)
    z2 = a1 @ W2 + b2
    a2 = np.exp(z2 - z2.max(1, keepdims=True))
    a2 /= a2.sum(1, keepdims=True)
    S = sw.sum()
    eps = np.finfo(np.float64).eps
    loss_ref = (np.sum(sw * -np.sum(Y * np.log(np.clip(a2, eps, 1 - eps)), axis=1)) / S
                + 0.5 * alpha * (np.sum(W1 ** 2) + np.sum(W2 ** 2)) / S)
    d2 = (a2 - Y) * sw[:, None]
    d1 = (d2 @ W2.T) * (a1 > 0)
    ref = [(Xg.T @ d1 + alpha * W1) / S, (a1.T @ d2 + alpha * W2) / S,
           d1.sum(0) / S, d2.sum(0) / S]
    spec = _engine.Spec("relu", "softmax", "log_loss")
    Xk = _engine.kernel_X(sp.csr_matrix(Xg) if sparse else Xg, np.float64)
    loss, gW, gb = _engine.loss_and_grad([W1, W2], [b1, b2], spec, Xk, Y, sw, alpha)
    np.testing.assert_allclose(loss, loss_ref, rtol=1e-12)
    for got, want in zip(gW + gb, ref):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
