"""fastmlp's MLPs compute the same numbers as scikit-learn's.

Both estimators draw their initial weights with scikit-learn's own initialiser, so the
same random_state gives both identical starting weights (one test instead copies
weights explicitly); in float64 the loss curves then agree to a relative 1e-9 and the
final weights to 1e-9 for every solver, which shows the kernels do the same arithmetic.
"""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import neural_network as sk
from sklearn.datasets import make_classification, make_multilabel_classification

import fastmlp

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)

SOLVERS = {
    "sgd_nesterov": dict(solver="sgd", learning_rate_init=0.05),
    "sgd_momentum": dict(solver="sgd", learning_rate_init=0.05, nesterovs_momentum=False),
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
}
RTOL = 1e-9


def classification_data(n_classes=3):
    return make_classification(n_samples=150, n_features=6, n_informative=4,
                               n_classes=n_classes, random_state=0)


def regression_data():
    X, y = classification_data()
    rng = np.random.RandomState(1)
    Y = np.column_stack([X @ rng.randn(6), np.sin(X[:, 0])]) + 0.1 * rng.randn(150, 2)
    return X, Y


def fit_both(kind, X, y, sample_weight=None, **params):
    """(scikit-learn's fitted estimator, fastmlp's) with the same parameters."""
    params = dict(dict(hidden_layer_sizes=(12, 7), batch_size=32, max_iter=5,
                       shuffle=False, random_state=3), **params)
    fitted = []
    for module in (sk, fastmlp):
        est = getattr(module, kind)(**params)
        fitted.append(est.fit(X, y, sample_weight=sample_weight))
    return fitted


def assert_same_fit(ref, est, rtol=RTOL, atol=1e-9):
    assert est.n_iter_ == ref.n_iter_
    assert est.out_activation_ == ref.out_activation_
    if ref.solver == "lbfgs":
        np.testing.assert_allclose(est.loss_, ref.loss_, rtol=rtol)
    else:
        assert est.t_ == ref.t_
        np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=rtol)
        if ref.early_stopping:
            np.testing.assert_allclose(est.validation_scores_, ref.validation_scores_,
                                       rtol=rtol)
            assert est.best_validation_score_ == pytest.approx(
                ref.best_validation_score_, rel=rtol)
        else:
            assert est.best_loss_ == pytest.approx(ref.best_loss_, rel=rtol)
    for got, want in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("solver, early_stopping", [
    # early stopping applies to the stochastic solvers only
    (solver, early_stopping) for solver in SOLVERS for early_stopping in (False, True)
    if not (solver == "lbfgs" and early_stopping)
])
@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_same_training_as_sklearn(kind, solver, early_stopping, activation):
    X, y = classification_data() if kind == "MLPClassifier" else regression_data()
    ref, est = fit_both(kind, X, y, activation=activation, early_stopping=early_stopping,
                        validation_fraction=0.2, **SOLVERS[solver])
    assert_same_fit(ref, est)
    if early_stopping:
        assert len(est.validation_scores_) == 5
    np.testing.assert_allclose(est.predict(X), ref.predict(X), rtol=RTOL, atol=1e-9)


@pytest.mark.parametrize("solver", ["sgd_nesterov", "adam"])
@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_shuffled_batches_follow_sklearn_random_stream(kind, solver):
    X, y = classification_data() if kind == "MLPClassifier" else regression_data()
    ref, est = fit_both(kind, X, y, shuffle=True, **SOLVERS[solver])
    assert_same_fit(ref, est)


@pytest.mark.parametrize("solver", list(SOLVERS))
@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_sample_weights(kind, solver):
    X, y = classification_data() if kind == "MLPClassifier" else regression_data()
    weights = np.random.RandomState(2).uniform(0.1, 3.0, size=len(X))
    ref, est = fit_both(kind, X, y, sample_weight=weights, **SOLVERS[solver])
    assert_same_fit(ref, est)


def test_sample_weights_with_early_stopping():
    X, y = classification_data()
    weights = np.random.RandomState(2).uniform(0.1, 3.0, size=len(X))
    ref, est = fit_both("MLPClassifier", X, y, sample_weight=weights, early_stopping=True,
                        **SOLVERS["adam"])
    assert_same_fit(ref, est)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_multilabel(solver):
    X, Y = make_multilabel_classification(n_samples=120, n_features=8, n_classes=4,
                                          random_state=0)
    ref, est = fit_both("MLPClassifier", X, Y, **SOLVERS[solver])
    assert_same_fit(ref, est)
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=RTOL)


def test_binary_string_labels_logistic_activation():
    X, y = classification_data(n_classes=2)
    labels = np.array(["no", "yes"])[y]
    ref, est = fit_both("MLPClassifier", X, labels, activation="logistic",
                        **SOLVERS["sgd_nesterov"])
    assert_same_fit(ref, est)
    assert est.predict(X).dtype == ref.predict(X).dtype
    np.testing.assert_array_equal(est.predict(X), ref.predict(X))
    np.testing.assert_allclose(est.predict_log_proba(X), ref.predict_log_proba(X),
                               rtol=RTOL)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_poisson_regression(solver):
    X, _ = classification_data()
    y = np.random.RandomState(0).poisson(np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1]))
    ref, est = fit_both("MLPRegressor", X, y, loss="poisson", **SOLVERS[solver])
    assert est.out_activation_ == "exp"
    assert_same_fit(ref, est)


@pytest.mark.parametrize("solver", ["sgd_nesterov", "lbfgs"])
@pytest.mark.parametrize("sparse_format", ["csr", "csc"])
def test_sparse_input(sparse_format, solver):
    X, y = classification_data()
    X[np.abs(X) < 0.7] = 0.0
    Xs = sp.csr_matrix(X) if sparse_format == "csr" else sp.csc_matrix(X)
    ref, est = fit_both("MLPClassifier", Xs, y, **SOLVERS[solver])
    assert_same_fit(ref, est)
    np.testing.assert_allclose(est.predict_proba(Xs), ref.predict_proba(Xs), rtol=RTOL)


@pytest.mark.parametrize("schedule", ["invscaling", "adaptive"])
def test_learning_rate_schedules(schedule):
    # adaptive with a large tol cuts the rate (divide by 5) after a few epochs
    X, y = classification_data()
    ref, est = fit_both("MLPClassifier", X, y, learning_rate=schedule, max_iter=12,
                        tol=0.5, n_iter_no_change=2, **SOLVERS["sgd_nesterov"])
    assert_same_fit(ref, est)
    assert est._optimizer.learning_rate == pytest.approx(ref._optimizer.learning_rate)
    assert est._optimizer.learning_rate < SOLVERS["sgd_nesterov"]["learning_rate_init"]


@pytest.mark.parametrize("solver", ["sgd_nesterov", "adam"])
def test_partial_fit_and_warm_start_from_copied_weights(solver):
    """Weights copied explicitly into both, then warm-started fit and partial_fit."""
    X, y = classification_data()
    params = dict(hidden_layer_sizes=(12,), batch_size=32, shuffle=False, max_iter=3,
                  warm_start=True, **SOLVERS[solver])
    ref = sk.MLPClassifier(random_state=0, **params).fit(X, y)
    est = fastmlp.MLPClassifier(random_state=99, max_iter=1, **{
        k: v for k, v in params.items() if k != "max_iter"}).fit(X, y)
    est.coefs_ = [c.copy() for c in ref.coefs_]
    est.intercepts_ = [b.copy() for b in ref.intercepts_]
    est.set_params(max_iter=3)
    for model in (ref, est):
        model.fit(X, y)
        for _ in range(2):
            model.partial_fit(X, y)
    np.testing.assert_allclose(est.loss_curve_[-5:], ref.loss_curve_[-5:], rtol=RTOL)
    for got, want in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=1e-9)


# solver: (rtol of the loss, rtol = atol of the weights) in float32. Measured on this
# test's fits (random_state=3) on the avx512, avx2 and generic kernels: loss within a
# relative 2.1e-8 (sgd), 1.7e-6 (adam), 2.1e-8 (lbfgs); weights within 8.6e-8, 1.5e-6,
# 5.5e-8 of (1 + |w|) (lbfgs: scikit-learn's weights are float64 there). Asserted with a
# margin of 14-20 (they were rtol 1e-3, atol 1e-4). Other random_states differ by
# up to 1.5x for sgd and adam, up to 6x for lbfgs (random_state=0): these tolerances are
# for this test's fits, not for any float32 fit.
FLOAT32_TOL = {"sgd_nesterov": (3e-7, 1.5e-6), "adam": (3e-5, 3e-5), "lbfgs": (3e-7, 1e-6)}


@pytest.mark.parametrize("solver", ["sgd_nesterov", "adam", "lbfgs"])
def test_float32_stays_float32(solver):
    X, y = classification_data()
    X32 = X.astype(np.float32)
    ref, est = fit_both("MLPClassifier", X32, y, **SOLVERS[solver])
    assert all(c.dtype == np.float32 for c in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X32).dtype == np.float32
    # float64 input on float32 weights promotes, as NumPy does in scikit-learn's pass
    assert est.predict_proba(X).dtype == np.float64
    loss_tol, weight_tol = FLOAT32_TOL[solver]
    if solver == "lbfgs":
        np.testing.assert_allclose(est.loss_, ref.loss_, rtol=loss_tol)
    else:
        np.testing.assert_allclose(est.loss_curve_, ref.loss_curve_, rtol=loss_tol)
    for got, want in zip(est.coefs_ + est.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(got, want, rtol=weight_tol, atol=weight_tol)
