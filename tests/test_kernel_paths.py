"""The numbers come from fastmlp's kernels, the same ones for any thread count, and past
the first chunk of rows too; the kernels read memory-mapped input where it lies.

Spies wrap the whole-network passes of `fastmlp._engine` (train_epoch, train_epochs,
loss_and_grad, forward) to show that the scikit-learn drop-ins train and predict through
them (scikit-learn's own NumPy code would give nearly the same numbers, so agreement
with scikit-learn alone cannot tell).
"""
import ctypes
import functools
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_classification
from sklearn.neural_network._multilayer_perceptron import BaseMultilayerPerceptron
from threadpoolctl import threadpool_limits

from fastmlp import MLPClassifier, MLPRegressor, Network, _engine, _kernels

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

X, Y3 = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                            random_state=0)
REGRESSION_Y = np.column_stack([X[:, 0] - 2 * X[:, 1], np.tanh(X[:, 2])])
ESTIMATORS = [(MLPClassifier, Y3), (MLPRegressor, REGRESSION_Y)]


# ---- spies ----------------------------------------------------------------------------

class EngineSpy:
    """Records the results of every call of _engine.train_epoch, train_epochs,
    loss_and_grad and forward (the functions still run), and makes scikit-learn's own NumPy passes fail
    (and be recorded) should anything call them."""

    PASSES = ("train_epoch", "train_epochs", "loss_and_grad", "forward")
    SKLEARN_NUMPY = ("_forward_pass", "_forward_pass_fast", "_backprop",
                     "_compute_loss_grad")

    def __init__(self, monkeypatch):
        self.results = {name: [] for name in self.PASSES}
        self.sklearn_calls = []
        for name in self.PASSES:
            monkeypatch.setattr(_engine, name, self._wrap(name, getattr(_engine, name)))
        # the prediction fast path's prepared forward pass counts as a forward pass
        monkeypatch.setattr(_engine, "predictor", self._wrap_predictor(_engine.predictor))
        for name in self.SKLEARN_NUMPY:
            monkeypatch.setattr(BaseMultilayerPerceptron, name, self._refuse(name))

    def _wrap(self, name, real):
        def spy(*args, **kwargs):
            result = real(*args, **kwargs)
            self.results[name].append(result)
            return result
        return spy

    def _wrap_predictor(self, real):
        results = self.results["forward"]

        class Recorded:
            def __init__(self, predictor):
                self.predictor, self.dtype = predictor, predictor.dtype

            def __call__(self, X):
                out = self.predictor(X)
                results.append(out)
                return out

        def spy(*args, **kwargs):
            predictor = real(*args, **kwargs)
            return None if predictor is None else Recorded(predictor)
        return spy

    def _refuse(self, name):
        # with the real one's signature, which fastmlp._sklearn_private checks at fit
        @functools.wraps(getattr(BaseMultilayerPerceptron, name))
        def numpy_pass(*args, **kwargs):
            self.sklearn_calls.append(name)
            raise AssertionError(f"scikit-learn's NumPy {name} ran")
        return numpy_pass

    def counts(self):
        assert self.sklearn_calls == []
        return {name: len(calls) for name, calls in self.results.items()}

    def clear(self):
        for calls in self.results.values():
            calls.clear()


def check_predictions_come_from_forward(est, spy, X):
    """predict (and predict_proba) each make one forward pass, whose output they return
    (as labels or probabilities for a classifier, raveled for one regression output)."""
    spy.clear()
    labels_or_values = est.predict(X)
    assert spy.counts() == {"train_epoch": 0, "train_epochs": 0, "loss_and_grad": 0,
                            "forward": 1}
    out = spy.results["forward"][0]
    assert out.shape == (len(X), est.n_outputs_)
    if isinstance(est, MLPClassifier):
        np.testing.assert_array_equal(labels_or_values, est.classes_[out.argmax(axis=1)])
        spy.clear()
        proba = est.predict_proba(X)
        assert spy.counts()["forward"] == 1
        np.testing.assert_array_equal(proba, spy.results["forward"][0])
    else:
        np.testing.assert_array_equal(labels_or_values, out)


@quiet
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("Estimator, y", ESTIMATORS, ids=["classifier", "regressor"])
def test_stochastic_solvers_run_through_the_kernels(Estimator, y, solver, monkeypatch):
    """fit runs its epochs (few and small: all of them) in one _engine.train_epochs
    call, whose losses are the loss curve; partial_fit runs one more; no full-batch
    gradient, none of scikit-learn's NumPy passes; predict and predict_proba are the
    kernels' forward pass."""
    spy = EngineSpy(monkeypatch)
    est = Estimator(hidden_layer_sizes=(8,), solver=solver, max_iter=4, batch_size=25,
                    random_state=0).fit(X, y)
    assert spy.counts() == {"train_epoch": 0, "train_epochs": 1, "loss_and_grad": 0,
                            "forward": 0}
    assert est.loss_curve_ == spy.results["train_epochs"][0].losses
    assert len(est.loss_curve_) == 4
    spy.clear()
    est.partial_fit(X, y)
    assert spy.counts() == {"train_epoch": 0, "train_epochs": 1, "loss_and_grad": 0,
                            "forward": 0}
    assert est.loss_curve_[-1:] == spy.results["train_epochs"][0].losses
    check_predictions_come_from_forward(est, spy, X)


@quiet
@pytest.mark.parametrize("Estimator, y", ESTIMATORS, ids=["classifier", "regressor"])
def test_early_stopping_scores_through_the_kernels(Estimator, y, monkeypatch):
    """With early stopping, each epoch is one train_epochs call, and its validation score
    and its validation loss (validation_loss_curve_) come from one forward pass each."""
    spy = EngineSpy(monkeypatch)
    est = Estimator(hidden_layer_sizes=(8,), solver="adam", max_iter=3, batch_size=25,
                    early_stopping=True, random_state=0).fit(X, y)
    assert spy.counts() == {"train_epoch": 0, "train_epochs": 3, "loss_and_grad": 0,
                            "forward": 3 + 3}


@quiet
@pytest.mark.parametrize("Estimator, y", ESTIMATORS, ids=["classifier", "regressor"])
def test_lbfgs_runs_through_the_kernels(Estimator, y, monkeypatch):
    """L-BFGS takes every loss and gradient from _engine.loss_and_grad (the final loss_
    is one of them), trains no epoch, and predicts with the forward pass. Its
    partial_fit is the classifier's AttributeError, as in scikit-learn, and for the
    regressor (scikit-learn 1.9's MLPRegressor offers it: its availability check tests
    the method `_check_solver` instead of calling it) another L-BFGS run in the kernels."""
    spy = EngineSpy(monkeypatch)
    est = Estimator(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=5,
                    random_state=0).fit(X, y)
    counts = spy.counts()
    assert counts["train_epoch"] == counts["train_epochs"] == counts["forward"] == 0
    assert counts["loss_and_grad"] >= est.n_iter_ == 5
    assert est.loss_ in [loss for loss, _, _ in spy.results["loss_and_grad"]]
    if Estimator is MLPClassifier:
        assert not hasattr(est, "partial_fit")
    else:
        spy.clear()
        est.partial_fit(X, y)
        counts = spy.counts()
        assert counts["train_epoch"] == counts["train_epochs"] == 0
        assert counts["loss_and_grad"] >= 5
        assert est.loss_ in [loss for loss, _, _ in spy.results["loss_and_grad"]]
    check_predictions_come_from_forward(est, spy, X)


def test_network_runs_through_the_kernels(monkeypatch):
    """Network trains its (few, small) epochs in one train_epochs call and predicts with
    forward."""
    spy = EngineSpy(monkeypatch)
    net = Network([6, 8, 3], epochs=3, random_state=0).fit(X, Y3)
    assert spy.counts() == {"train_epoch": 0, "train_epochs": 1, "loss_and_grad": 0,
                            "forward": 0}
    assert net.loss_curve_ == spy.results["train_epochs"][0].losses
    net.partial_fit(X, Y3)
    assert spy.counts()["train_epochs"] == 2
    spy.clear()
    proba, labels = net.predict_proba(X), net.predict(X)
    assert spy.counts() == {"train_epoch": 0, "train_epochs": 0, "loss_and_grad": 0,
                            "forward": 2}
    np.testing.assert_array_equal(proba, spy.results["forward"][0])
    np.testing.assert_array_equal(labels, spy.results["forward"][1].argmax(axis=1))


# ---- one thread or all, batch by batch --------------------------------------------------------

@pytest.fixture(scope="module")
def wide_data():
    """6,400 rows of 200 features: 200 batches of 32 an epoch, whose products with a
    256-unit hidden layer (3.3 MFLOP) are large enough to run on several threads."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(6400, 200)), rng.integers(0, 4, 6400)


def kernel_threads():
    """The thread count the next parallel kernel would use in this thread."""
    return ctypes.CDLL(_kernels.__file__).fm_omp_max_threads()


@pytest.mark.skipif(not sys.platform.startswith("linux"),
                    reason="asks the extension's exported fm_omp_max_threads (Linux only)")
@quiet
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_epoch_thread_trial_gives_the_same_bits(wide_data, solver, dtype):
    """On more than one thread, the governor runs each batch on one thread or all
    (tests/test_governor.py): whichever it picks, batch by batch, the weights are
    bit-identical to a single-threaded epoch, for Network and MLPClassifier."""
    X, y = wide_data
    results = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            assert kernel_threads() == threads  # else the governor would not choose
            net = Network([200, 256, 4], solver=solver, batch_size=32, epochs=1,
                          random_state=0, dtype=dtype).fit(X, y)
            mlp = MLPClassifier(hidden_layer_sizes=(256,), solver=solver, batch_size=32,
                                max_iter=1, random_state=0).fit(X.astype(dtype), y)
        results.append((net, mlp))
    for one, two in zip(*results):
        assert one.coefs_[0].dtype == dtype
        for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
            np.testing.assert_array_equal(a, b)
        assert one.loss_curve_ == two.loss_curve_


# ---- predictions past the first chunk of 1024 rows -----------------------------------

def numpy_forward(coefs, intercepts, hidden, output, X):
    """The network's output on X, in float64 from the given weights."""
    a = X.toarray() if sp.issparse(X) else X
    a = a.astype(np.float64)
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        z = a @ W.astype(np.float64) + b.astype(np.float64)
        name = output if layer == len(coefs) - 1 else hidden
        if name == "relu":
            a = np.maximum(z, 0)
        elif name == "leaky_relu":
            a = np.where(z > 0, z, 0.2 * z)
        elif name == "softmax":
            e = np.exp(z - z.max(axis=1, keepdims=True))
            a = e / e.sum(axis=1, keepdims=True)
        else:
            assert name == "identity"
            a = z
    return a


def shifted_after_1024(a):
    """a with every row from 1024 on replaced by the next one: what a kernel that misplaced
    the rows of the later chunks by one would return."""
    return np.concatenate([a[:1024], a[1025:], a[-1:]])


def assert_matches_reference(got, ref, dtype):
    """got == ref within the dtype's tolerance, and that tolerance does tell ref apart
    from its rows shifted by one after the first chunk (so the comparison can fail)."""
    rtol, atol = (1e-12, 1e-13) if dtype == np.float64 else (1e-5, 1e-6)
    got = got.reshape(len(got), -1)
    ref = ref.reshape(len(ref), -1)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)
    shifted = shifted_after_1024(ref)
    assert not np.allclose(got[1024:], shifted[1024:], rtol=rtol, atol=atol)
    assert not np.allclose(got[2048:], shifted[2048:], rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def rows_2500():
    """2,500 rows of 20 features (three chunks of the forward pass, the last short), a
    third of the entries zero, and 3-class labels and two regression targets."""
    rng = np.random.default_rng(1)
    Xb = rng.normal(size=(2500, 20))
    Xb[rng.random(Xb.shape) < 0.33] = 0.0
    w = rng.normal(size=20)
    y = np.digitize(Xb @ w, np.quantile(Xb @ w, [1 / 3, 2 / 3]))
    return Xb, y, np.column_stack([Xb @ w, np.sin(Xb[:, 0])])


@quiet
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "csr"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_predictions_of_2500_rows_match_numpy(rows_2500, dtype, sparse):
    """predict/predict_proba of MLPClassifier, MLPRegressor and Network on 2,500 rows,
    dense and CSR, match a NumPy forward pass of their coefs_/intercepts_ in every row:
    float64 to 1e-12, float32 to 1e-5 relative. The chunks past the first 1024 rows are
    the ones the kernels compute apart (in parallel); a misplaced row there is caught:
    the test checks that a reference shifted by one row after row 1024 (what such a
    kernel would return; the C code cannot be mutated from here) fails the comparison."""
    Xd, y, Y = rows_2500
    Xd = Xd.astype(dtype)
    Xp = sp.csr_matrix(Xd) if sparse else Xd
    train = slice(0, 400)
    clf = MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=3, random_state=0)
    clf.fit(Xd[train], y[train])
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=3, random_state=0)
    reg.fit(Xd[train], Y[train])
    net = Network([20, 12, 3], activation="leaky_relu", slope=0.2, epochs=2,
                  random_state=0, dtype=dtype).fit(Xd[train], y[train])
    for model in (clf, reg, net):
        assert model.coefs_[0].dtype == dtype

    ref = numpy_forward(clf.coefs_, clf.intercepts_, "relu", "softmax", Xp)
    proba = clf.predict_proba(Xp)
    assert proba.dtype == dtype
    assert_matches_reference(proba, ref, dtype)
    np.testing.assert_array_equal(clf.predict(Xp), clf.classes_[proba.argmax(axis=1)])

    ref = numpy_forward(reg.coefs_, reg.intercepts_, "relu", "identity", Xp)
    assert_matches_reference(reg.predict(Xp), ref, dtype)

    ref = numpy_forward(net.coefs_, net.intercepts_, "leaky_relu", "softmax", Xp)
    proba = net.predict_proba(Xp)
    assert_matches_reference(proba, ref, dtype)
    np.testing.assert_array_equal(net.predict(Xp), net.classes_[ref.argmax(axis=1)])


# ---- memory-mapped input -------------------------------------------------------------

@pytest.fixture
def memmap(tmp_path):
    """A read-only float32 C-contiguous np.memmap of 100 x 5, and 3-class labels."""
    rng = np.random.default_rng(0)
    path = tmp_path / "X.f32"
    rng.normal(size=(100, 5)).astype(np.float32).tofile(path)
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=(100, 5))
    assert not mm.flags.writeable and mm.flags.c_contiguous
    return mm, rng.integers(0, 3, 100)


@quiet
@pytest.mark.parametrize("make", [
    lambda: MLPClassifier(hidden_layer_sizes=(4,), random_state=0),
    lambda: Network([5, 4, 3], random_state=0),
], ids=["MLPClassifier", "Network"])
def test_memmap_is_read_in_place(memmap, make, monkeypatch):
    """The X that the epoch kernel reads is the memmap's own memory, not a copy (the
    README promises large read-only data files are not copied), for partial_fit and fit;
    and the prediction kernel reads it in place too."""
    mm, y = memmap
    seen = []
    real_epochs, real_forward = _kernels.train_epochs, _kernels.forward_net

    def epochs_spy(coefs, intercepts, hidden, out, loss, slope, X, *args, **kwargs):
        seen.append(("epochs", X))
        return real_epochs(coefs, intercepts, hidden, out, loss, slope, X, *args, **kwargs)

    def forward_spy(coefs, intercepts, hidden, out, slope, X, *args, **kwargs):
        seen.append(("forward", X))
        return real_forward(coefs, intercepts, hidden, out, slope, X, *args, **kwargs)

    monkeypatch.setattr(_kernels, "train_epochs", epochs_spy)
    monkeypatch.setattr(_kernels, "forward_net", forward_spy)
    model = make()
    model.partial_fit(mm, y, classes=[0, 1, 2])
    model.set_params(**({"max_iter": 2} if isinstance(model, MLPClassifier) else
                        {"epochs": 2}))
    model.fit(mm, y)
    model.predict(mm)
    # partial_fit's epoch, fit's two (one call), predict
    assert [what for what, _ in seen] == ["epochs"] * 2 + ["forward"]
    for what, array in seen:
        assert np.shares_memory(array, mm), what


# ---- one table per concept -------------------------------------------------------------

def test_name_tables_derive_from_the_kernels_enums():
    """The codes reach Python from fastmlp.h's enums (cpdef enum): every name of the
    estimators' tables maps to an enum member, each alias to its target's code, and the
    drop-ins accept exactly the kernels' hidden activations by their own names."""
    from fastmlp import _engine, _kernels
    from fastmlp._multilayer_perceptron import _ACTIVATIONS

    assert _kernels.ACT_CODES == {m.name[3:].lower(): int(m) for m in _kernels.fm_act}
    assert _kernels.LOSS_CODES == {m.name[3:].lower(): int(m) for m in _kernels.fm_loss}
    assert set(_kernels.ACT_CODES) >= set(_kernels.HIDDEN_ACT_CODES) | {"softmax", "exp"}
    for table, codes in ((_engine.HIDDEN_ACTIVATIONS, _kernels.ACT_CODES),
                         (_engine.OUTPUT_ACTIVATIONS, _kernels.ACT_CODES),
                         (_engine.LOSSES, _kernels.LOSS_CODES)):
        for name, code in table.items():
            assert code == codes[_engine.ALIASES.get(name, name)], name
    assert _ACTIVATIONS == set(_kernels.HIDDEN_ACT_CODES)
    assert {"softmax", "exp"}.isdisjoint(_engine.HIDDEN_ACTIVATIONS)
