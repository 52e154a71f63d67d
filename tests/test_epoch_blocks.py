"""Blocks of epochs per call to the kernels (fm_train_epochs): the row orders drawn
ahead, scikit-learn's schedule and stopping rule applied in C between epochs, and
all-or-nothing epochs inside a block.

The fits are compared bit for bit with fits of one epoch per call (`epochs_per_call`
patched to 1) and, where scikit-learn has the feature, with scikit-learn itself; the
stopping rule run by the kernels with the rule run by Python (verbose fits, one epoch
per call)."""
import contextlib
import io
import warnings

import numpy as np
import pytest
from sklearn import neural_network as sk
from sklearn.datasets import make_classification, make_regression

import fastmlp
from fastmlp import Network, _engine, _kernels

X, Y = make_classification(n_samples=150, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)
XR, YR = make_regression(n_samples=150, n_features=6, noise=1.0, random_state=0)

# Fits whose stopping rule acts within the first block: a large tol makes every epoch
# one without improvement, so that SGD's adaptive schedule divides the rate by 5 every
# n_iter_no_change + 1 epochs until it is at most 1e-6, and the others stop.
RULE_CASES = {
    "sgd-constant": dict(solver="sgd", learning_rate_init=0.05, tol=0.5),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05,
                         tol=0.5),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling",
                           learning_rate_init=0.05, tol=0.02),
    "adam": dict(solver="adam", learning_rate_init=0.01, tol=0.05),
    "sgd-no-stop": dict(solver="sgd", learning_rate_init=0.05, n_iter_no_change=1000),
}


def params(case, **extra):
    return {**dict(hidden_layer_sizes=(12, 7), batch_size=32, max_iter=60,
                   n_iter_no_change=2, random_state=3), **RULE_CASES[case], **extra}


def fit(Estimator, Xa, ya, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Estimator(**kwargs).fit(Xa, ya)


def one_epoch_per_call(monkeypatch):
    monkeypatch.setattr(_engine, "epochs_per_call", lambda n, coefs: 1)


def assert_identical(a, b):
    assert a.n_iter_ == b.n_iter_
    assert a.loss_curve_ == b.loss_curve_
    for got, want in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_stopping_rule_and_schedule_match_sklearn(case):
    """Stopped (or not) after the same epoch as scikit-learn, with its loss curve,
    weights, best loss, no-improvement count, step count and learning rate."""
    ref = fit(sk.MLPClassifier, X, Y, **params(case))
    est = fit(fastmlp.MLPClassifier, X, Y, **params(case))
    if case == "sgd-no-stop":
        assert est.n_iter_ == 60
    else:
        assert 3 <= est.n_iter_ < 60  # the rule stopped it, inside one block
    assert est.n_iter_ == ref.n_iter_ and est.t_ == ref.t_
    np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=1e-9)
    assert est.best_loss_ == pytest.approx(ref.best_loss_, rel=1e-9)
    assert est._no_improvement_count == ref._no_improvement_count
    if est.solver == "sgd":  # (scikit-learn's Adam keeps its last step's rate there)
        assert est._optimizer.learning_rate == pytest.approx(
            ref._optimizer.learning_rate, rel=1e-12)
    for got, want in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("case", list(RULE_CASES))
def test_blocks_of_any_size_and_the_python_rule_give_the_same_fit(case, monkeypatch):
    """One block, one epoch per call, and verbose (one epoch per call with scikit-learn's
    own rule in Python): bit-identical fits."""
    block = fit(fastmlp.MLPClassifier, X, Y, **params(case))
    with contextlib.redirect_stdout(io.StringIO()) as out:
        verbose = fit(fastmlp.MLPClassifier, X, Y, **params(case), verbose=True)
    assert out.getvalue().count("Iteration") == verbose.n_iter_
    one_epoch_per_call(monkeypatch)
    single = fit(fastmlp.MLPClassifier, X, Y, **params(case))
    for other in (single, verbose):
        assert_identical(block, other)
        assert block.best_loss_ == other.best_loss_
        assert block._no_improvement_count == other._no_improvement_count
        assert block._optimizer.learning_rate == other._optimizer.learning_rate


def test_blocks_split_mid_run_give_the_same_fit(monkeypatch):
    """Blocks of 7 epochs (the stop falls inside the fourth): the same fit as one block."""
    whole = fit(fastmlp.MLPClassifier, X, Y, **params("sgd-adaptive"))
    monkeypatch.setattr(_engine, "epochs_per_call", lambda n, coefs: 7)
    sevens = fit(fastmlp.MLPClassifier, X, Y, **params("sgd-adaptive"))
    assert whole.n_iter_ > 21 and whole.n_iter_ % 7
    assert_identical(whole, sevens)


def blocks_of(monkeypatch, **kwargs):
    """The epochs asked of each call to the kernels by a fit of params(**kwargs)."""
    asked = []
    real = _engine.train_epochs

    def spy(*args, **kw):
        asked.append(args[7])
        return real(*args, **kw)
    monkeypatch.setattr(_engine, "train_epochs", spy)
    fit(fastmlp.MLPClassifier, X, Y, **params(**kwargs))
    return asked


def test_blocks_grow_from_a_short_first_one(monkeypatch):
    """The first call runs FIRST_BLOCK_EPOCHS epochs, each next one twice the last, at
    most epochs_per_call and what max_iter leaves; a fit that stops early has drawn at
    most as many orders again as it used."""
    assert _engine.FIRST_BLOCK_EPOCHS == 8
    assert blocks_of(monkeypatch, case="sgd-no-stop", max_iter=100) == [8, 16, 32, 44]
    monkeypatch.setattr(_engine, "epochs_per_call", lambda n, coefs: 20)
    assert blocks_of(monkeypatch, case="sgd-no-stop", max_iter=70) == [8, 16, 20, 20, 6]
    monkeypatch.undo()
    drawn = []
    real = _engine.RowOrders.draw
    monkeypatch.setattr(_engine.RowOrders, "draw",
                        lambda self, k: drawn.append(k) or real(self, k))
    est = fit(fastmlp.MLPClassifier, X, Y,
              **params("sgd-constant", max_iter=400, n_iter_no_change=15))
    assert 8 < est.n_iter_ < 40 and sum(drawn) < 2 * est.n_iter_ + 8


@pytest.mark.parametrize("case", ["sgd-constant", "sgd-no-stop"])
def test_random_state_instance_ends_where_sklearn_leaves_it(case):
    """Orders drawn ahead and not used are given back: a user's RandomState is left in
    scikit-learn's state (the fit stopped early or ran to max_iter)."""
    states = []
    for module in (sk, fastmlp):
        rs = np.random.RandomState(7)
        fit(module.MLPClassifier, X, Y, **{**params(case), "random_state": rs})
        states.append(rs.randint(0, 2 ** 31, size=4))
    np.testing.assert_array_equal(states[0], states[1])


def test_network_blocks_match_one_epoch_per_call(monkeypatch):
    """Network draws a fresh permutation per epoch: the same orders, weights and
    random state after the fit in blocks as with one epoch per call."""
    fits, draws = [], []
    for patch in (False, True):
        if patch:
            one_epoch_per_call(monkeypatch)
        rs = np.random.RandomState(11)
        fits.append(Network([6, 10, 3], epochs=25, batch_size=16, random_state=rs).fit(X, Y))
        draws.append(rs.randint(0, 2 ** 31, size=4))
    assert_identical(*fits)
    np.testing.assert_array_equal(*draws)


def diverging(monkeypatch=None, **extra):
    """An SGD regression that diverges in its fourth epoch; (estimator, error)."""
    est = fastmlp.MLPRegressor(hidden_layer_sizes=(12,), solver="sgd", batch_size=32,
                               learning_rate_init=0.01, max_iter=50, random_state=0,
                               **extra)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="Solver diverged") as info:
            est.fit(XR, YR)
    return est, str(info.value)


def test_divergence_inside_a_block_keeps_the_epochs_before_it(monkeypatch):
    """The epoch that diverges is undone, those before it in the block are kept: the
    model and message are those of one epoch per call, and of a fit of that many epochs."""
    block, message = diverging()
    assert len(block.loss_curve_) == 3 and "iteration 4" in message
    good = fit(fastmlp.MLPRegressor, XR, YR, hidden_layer_sizes=(12,), solver="sgd",
               batch_size=32, learning_rate_init=0.01, max_iter=3, random_state=0)
    assert_identical(block, good)
    one_epoch_per_call(monkeypatch)
    single, message_single = diverging()
    assert message == message_single
    assert_identical(block, single)


def test_interrupt_inside_a_block_keeps_the_epochs_before_it():
    """Ctrl-C in the third epoch (5 batches an epoch) of a one-block fit: the warning,
    and the model of the two epochs before it."""
    kwargs = params("sgd-no-stop")
    _kernels.interrupt_after_batches(12)
    try:
        with pytest.warns(UserWarning, match="Training interrupted by user"):
            est = fastmlp.MLPClassifier(**kwargs).fit(X, Y)
    finally:
        _kernels.interrupt_after_batches(-1)
    two = fit(fastmlp.MLPClassifier, X, Y, **{**kwargs, "max_iter": 2})
    assert_identical(est, two)


def test_row_orders_give_back_what_was_not_used():
    """RowOrders.keep(k) leaves the random state as k draws would."""
    a, b = np.random.RandomState(0), np.random.RandomState(0)
    orders = _engine.RowOrders(10, a)
    drawn = orders.draw(5)
    orders.keep(2)
    first = _engine.RowOrders(10, b)
    np.testing.assert_array_equal(first.draw(2), drawn[:2])
    first.keep(2)
    assert a.randint(1 << 30) == b.randint(1 << 30)
    np.testing.assert_array_equal(orders.current, drawn[1])


def test_row_orders_without_rewind_drop_what_was_not_used():
    """rewind=False: the same orders, the unused draws left spent (no state copied)."""
    a, b = np.random.RandomState(0), np.random.RandomState(0)
    orders = _engine.RowOrders(10, a, rewind=False)
    drawn = orders.draw(5)
    orders.keep(2)
    np.testing.assert_array_equal(drawn, _engine.RowOrders(10, b).draw(5))
    assert a.randint(1 << 30) == b.randint(1 << 30)  # both five draws on
    np.testing.assert_array_equal(orders.current, drawn[1])


@pytest.mark.parametrize("seed, rewind", [(0, False), (None, True),
                                          (np.random.RandomState(0), True)])
def test_fits_rewind_only_random_states_others_see(seed, rewind, monkeypatch):
    """A RandomState made from an integer seed is the fit's own: its unused orders are
    dropped. The global one (None) and a user's instance are given them back."""
    made = []
    real = _engine.RowOrders

    def spy(*args, **kwargs):
        made.append(kwargs.get("rewind", True))
        return real(*args, **kwargs)
    monkeypatch.setattr(_engine, "RowOrders", spy)
    fit(fastmlp.MLPClassifier, X, Y, **{**params("sgd-constant"), "random_state": seed})
    assert made == [rewind]


def test_train_epochs_checks_the_row_orders():
    """The binding refuses orders of the wrong shape or with rows out of range."""
    est = fit(fastmlp.MLPClassifier, X, Y, hidden_layer_sizes=(5,), max_iter=1)
    spec = est._spec()
    opt = est._optimizer
    Yb = np.eye(3)[Y]
    run = dict(opt.schedule_args(), t=0, check_loss=False, tol=0.0, n_iter_no_change=0,
               best_loss=np.inf, no_improvement=0)
    bad = np.zeros((2, 150), dtype=np.int64)
    bad[1, 5] = 150
    for orders, k, match in [(np.zeros((2, 149), np.int64), 2, "shape"),
                             (bad, 2, r"\[0, 150\)")]:
        with pytest.raises(ValueError, match=match):
            _engine.train_epochs(est.coefs_, est.intercepts_, spec, X, Yb, None, orders,
                                 k, 32, opt, run)
