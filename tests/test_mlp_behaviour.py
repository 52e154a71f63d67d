"""fastmlp's MLPs behave as scikit-learn's: meta-estimators, persistence, partial_fit,
bad input, divergence, sparse input, warm start, schedules and verbose output."""
import pickle
import re

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import neural_network as sk
from sklearn.base import clone
from sklearn.datasets import make_classification, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor

quiet = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=200, n_features=8, n_informative=5,
                               n_classes=3, random_state=0)
    return X, y


@pytest.fixture(scope="module")
def regression(data):
    X, y = data
    return X, X[:, 0] - 2 * X[:, 1] + 0.1 * y


def all_finite(est):
    return all(np.isfinite(a).all() for a in est.coefs_ + est.intercepts_)


# ---- meta-estimators ---------------------------------------------------------------

@quiet
def test_pipeline_and_grid_search_in_parallel(data):
    """GridSearchCV over a pipeline, in two worker processes, scores every candidate
    and split as with scikit-learn's own MLPClassifier, so picks the same alpha (1.0,
    whose score is higher than the others') and refits the same model."""
    X, y = data
    searches = []
    for Estimator in (MLPClassifier, sk.MLPClassifier):
        pipe = make_pipeline(StandardScaler(), Estimator(max_iter=30, random_state=0))
        search = GridSearchCV(pipe, {"mlpclassifier__alpha": [1e-4, 1.0, 10.0]}, cv=2,
                              n_jobs=2)
        searches.append(search.fit(X, y))
    search, ref = searches
    for key in ("split0_test_score", "split1_test_score", "mean_test_score",
                "rank_test_score"):
        np.testing.assert_array_equal(search.cv_results_[key], ref.cv_results_[key])
    best, second = sorted(ref.cv_results_["mean_test_score"])[:-3:-1]
    assert best > second  # not a tie that the candidates' order decides
    assert search.best_params_ == ref.best_params_ == {"mlpclassifier__alpha": 1.0}
    assert isinstance(search.best_estimator_[-1], MLPClassifier)
    for got, want in zip(search.best_estimator_[-1].coefs_, ref.best_estimator_[-1].coefs_):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    assert search.score(X, y) == ref.score(X, y) > 0.7


@quiet
def test_cross_val_score_in_parallel(regression):
    X, y = regression
    scores = cross_val_score(MLPRegressor(max_iter=60, random_state=0), X, y, cv=3,
                             n_jobs=2)
    assert scores.shape == (3,)
    assert np.all(scores > 0.5)


@quiet
def test_clone_gives_an_unfitted_copy(data):
    X, y = data
    est = MLPClassifier(hidden_layer_sizes=(7,), max_iter=3).fit(X, y)
    copy = clone(est)
    assert type(copy) is MLPClassifier
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_")


# ---- persistence -------------------------------------------------------------------

def round_trip(est, how, tmp_path):
    if how == "pickle":
        return pickle.loads(pickle.dumps(est))
    joblib.dump(est, tmp_path / "model.joblib")
    return joblib.load(tmp_path / "model.joblib")


@quiet
@pytest.mark.parametrize("how", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trips(how, data, tmp_path):
    X, y = data
    labels = np.array(["ant", "bee", "cat"])[y]
    for est, target in ((MLPClassifier(max_iter=5, random_state=0), labels),
                        (MLPRegressor(max_iter=5, random_state=0), y)):
        est.fit(X, target)
        back = round_trip(est, how, tmp_path)
        np.testing.assert_array_equal(back.predict(X), est.predict(X))
        # the optimiser state travels too: one more epoch gives the same weights
        back.partial_fit(X, target)
        est.partial_fit(X, target)
        np.testing.assert_array_equal(back.coefs_[0], est.coefs_[0])


@quiet
@pytest.mark.parametrize("case", ["multiclass_strings", "multilabel", "binary_lbfgs",
                                  "regression"])
def test_save_and_load(case, data, tmp_path):
    X, y = data
    if case == "multiclass_strings":
        est, target = MLPClassifier(max_iter=5), np.array(["a", "b", "c"])[y]
    elif case == "multilabel":
        X, target = make_multilabel_classification(n_samples=100, n_features=8,
                                                   n_classes=3, random_state=0)
        est = MLPClassifier(max_iter=5)
    elif case == "binary_lbfgs":
        est, target = MLPClassifier(solver="lbfgs", max_iter=5), y == 1
    else:
        est, target = MLPRegressor(max_iter=5), X[:, 0]
    est.fit(X, target)
    est.save(tmp_path / "model.npz")
    back = fastmlp.load(tmp_path / "model.npz")
    assert type(back) is type(est)
    assert back.get_params() == est.get_params()
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    if case != "regression":
        np.testing.assert_array_equal(back.classes_, est.classes_)
        np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    if est.solver != "lbfgs":
        # partial_fit continues from the loaded weights and bookkeeping
        back.partial_fit(X, target)
        assert back.t_ == est.t_ + len(X)
        assert back.loss_curve_[:-1] == est.loss_curve_


@quiet
def test_feature_names_survive_save_and_load(regression, tmp_path):
    pd = pytest.importorskip("pandas", reason="feature names come from a DataFrame")
    X, y = regression
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    est = MLPRegressor(max_iter=3).fit(frame, y)
    est.save(tmp_path / "model.npz")
    back = fastmlp.load(tmp_path / "model.npz")
    np.testing.assert_array_equal(back.feature_names_in_, est.feature_names_in_)
    with pytest.warns(UserWarning, match="fitted with feature names"):
        back.predict(X)


# ---- partial_fit ------------------------------------------------------------------

def test_partial_fit_classes(data):
    X, y = data
    est = MLPClassifier(hidden_layer_sizes=(7,))
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, y)
    est.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    np.testing.assert_array_equal(est.classes_, [0, 1, 2])
    assert est.predict_proba(X).shape == (len(X), 3)
    est.partial_fit(X, y)
    assert est.n_iter_ == 1 and len(est.loss_curve_) == 2
    with pytest.raises(ValueError, match="classes not in `self.classes_`"):
        est.partial_fit(X, y + 1)


def test_partial_fit_is_not_for_lbfgs_or_early_stopping(data):
    X, y = data
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        MLPRegressor(early_stopping=True).partial_fit(X, y)


# ---- bad input ---------------------------------------------------------------------

BAD_PARAMS = [dict(alpha=-1.0), dict(hidden_layer_sizes=(5, 0)), dict(activation="bogus"),
              dict(solver="newton"), dict(batch_size=0), dict(learning_rate="fast"),
              dict(momentum=1.5), dict(validation_fraction=1.0), dict(n_iter_no_change=0),
              dict(max_fun=0)]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=lambda p: next(iter(p)))
@pytest.mark.parametrize("kind", ["MLPClassifier", "MLPRegressor"])
def test_invalid_parameters_fail_at_fit_like_sklearn(kind, params, data):
    X, y = data
    est = getattr(fastmlp, kind)(**params)  # construction accepts anything
    with pytest.raises(ValueError) as ours:
        est.fit(X, y)
    with pytest.raises(ValueError) as theirs:
        getattr(sk, kind)(**params).fit(X, y)
    assert type(ours.value) is type(theirs.value)
    # fastmlp's activations add leaky_relu, its solvers rprop: the lists differ
    if not {"activation", "solver"} & set(params):
        assert str(ours.value) == str(theirs.value)
    else:
        assert str(ours.value).replace("'leaky_relu', ", "").replace("'rprop', ", "") \
            .split("Got")[0].startswith(str(theirs.value).split("{")[0])


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_non_finite_input(bad, data):
    X, y = data
    X = X.copy()
    X[3, 2] = bad
    for est in (MLPClassifier(max_iter=2), MLPRegressor(max_iter=2)):
        with pytest.raises(ValueError, match="Input X contains"):
            est.fit(X, y)
    with pytest.raises(ValueError, match="Input y contains"):
        MLPRegressor(max_iter=2).fit(data[0], np.where(y == 0, bad, y))


@quiet
def test_wrong_feature_count_and_unfitted(data):
    X, y = data
    est = MLPClassifier(max_iter=2)
    with pytest.raises(NotFittedError):
        est.predict(X)
    est.fit(X, y)
    with pytest.raises(ValueError, match="X has 7 features, but MLPClassifier is "
                                         "expecting 8 features"):
        est.predict(X[:, :7])


@quiet
def test_leaky_relu_is_an_extra_activation(regression):
    X, y = regression
    est = MLPRegressor(activation="leaky_relu", solver="lbfgs", max_iter=200,
                       random_state=0).fit(X, y)
    assert est.score(X, y) > 0.9


# ---- divergence --------------------------------------------------------------------

def test_divergence_raises_and_keeps_finite_weights():
    rng = np.random.RandomState(0)
    X = rng.randn(100, 4)
    y = 1e6 * X[:, 0]
    est = MLPRegressor(solver="sgd", learning_rate_init=10.0, max_iter=20, random_state=0)
    with pytest.raises(ValueError, match="diverged .*non-finite"):
        est.fit(X, y)
    assert all_finite(est)
    assert 0 < est.n_iter_ < 20
    assert len(est.loss_curve_) == est.n_iter_
    assert np.isfinite(est.loss_curve_).all()


# ---- sparse input, warm start, early stopping, schedules ---------------------------

@quiet
@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_sparse_input_equals_dense(solver, data):
    X, y = data
    X = np.where(np.abs(X) < 0.8, 0.0, X)
    params = dict(solver=solver, max_iter=5, random_state=0, shuffle=True)
    dense = MLPClassifier(**params).fit(X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        sparse = MLPClassifier(**params).fit(fmt(X), y)
        for got, want in zip(sparse.coefs_, dense.coefs_):
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(sparse.predict_proba(fmt(X)), dense.predict_proba(X),
                                   rtol=1e-10)


@quiet
def test_warm_start_continues(data):
    X, y = data
    est = MLPClassifier(max_iter=4, warm_start=True, random_state=0).fit(X, y)
    first = [c.copy() for c in est.coefs_]
    est.fit(X, y)
    assert len(est.loss_curve_) == 8
    assert est.loss_curve_[4] < est.loss_curve_[0]
    assert not np.allclose(est.coefs_[0], first[0])
    with pytest.raises(ValueError, match="warm_start can only be used where `y` has "
                                         "the same classes"):
        est.fit(X[y < 2], y[y < 2])


def test_tol_stops_early_and_max_iter_warns(data):
    X, y = data
    stopped = MLPClassifier(tol=10.0, n_iter_no_change=2, max_iter=50).fit(X, y)
    # the first epoch sets best_loss_; then n_iter_no_change + 1 epochs that do not improve
    assert stopped.n_iter_ == 4
    with pytest.warns(ConvergenceWarning, match="Maximum iterations \\(3\\) reached"):
        MLPClassifier(max_iter=3).fit(X, y)


@quiet
def test_early_stopping_keeps_the_best_weights(data):
    X, y = data
    est = MLPClassifier(early_stopping=True, max_iter=12, learning_rate_init=0.05,
                        n_iter_no_change=100, random_state=0).fit(X, y)
    assert est.best_loss_ is None and len(est.validation_scores_) == 12
    assert est.best_validation_score_ == max(est.validation_scores_)
    np.testing.assert_array_equal(est.coefs_[0], est._best_coefs[0])


@quiet
def test_learning_rate_schedules(data):
    X, y = data
    inv = MLPClassifier(solver="sgd", learning_rate="invscaling", power_t=0.5,
                        learning_rate_init=0.1, max_iter=3).fit(X, y)
    assert inv._optimizer.learning_rate == pytest.approx(0.1 / (inv.t_ + 1) ** 0.5)
    const = MLPClassifier(solver="sgd", max_iter=3).fit(X, y)
    assert const._optimizer.learning_rate == const.learning_rate_init


# ---- verbose output ----------------------------------------------------------------

@quiet
@pytest.mark.parametrize("params", [
    dict(),
    dict(early_stopping=True),
    dict(solver="sgd", learning_rate="adaptive", tol=10.0, n_iter_no_change=1),
], ids=["plain", "early_stopping", "adaptive"])
def test_verbose_prints_what_sklearn_prints(params, data, capsys):
    X, y = data
    params = dict(params, verbose=True, max_iter=6, shuffle=False, random_state=0)
    sk.MLPClassifier(**params).fit(X, y)
    theirs = capsys.readouterr().out
    MLPClassifier(**params).fit(X, y)
    ours = capsys.readouterr().out
    assert re.match(r"Iteration 1, loss = \d+\.\d{8}\n", ours)
    assert ours == theirs


# ---- the arrays training writes start on cache lines ------------------------------------

def off_line(a):
    """A copy of a whose data starts 4 bytes past a 64-byte cache line."""
    buf = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = -buf.ctypes.data % 64 + 4
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@quiet
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_trained_weights_and_moments_start_on_cache_lines(data, solver):
    # The threads of an epoch split each weight matrix and its moments by columns at
    # multiples of 128 bytes; on an array off a cache line, each row's middle line
    # would be written by both cores.
    X, y = data
    clf = MLPClassifier((40,), solver=solver, max_iter=2, random_state=0).fit(
        X.astype(np.float32), y)
    opt = clf._optimizer
    for a in clf.coefs_ + clf.intercepts_ + opt.m + opt.v:
        assert a.ctypes.data % 64 == 0
    net = fastmlp.Network([8, 40, 3], epochs=1, random_state=0).fit(X, y)
    for a in net.coefs_ + net.intercepts_ + net._optimizer.m:
        assert a.ctypes.data % 64 == 0


@quiet
def test_weights_off_cache_lines_train_as_aligned_ones(data):
    X, y = data
    a = MLPClassifier((40,), max_iter=3, random_state=0).fit(X, y)
    b = pickle.loads(pickle.dumps(a))
    b.coefs_ = [off_line(c) for c in b.coefs_]
    b._optimizer.m = [off_line(m) for m in b._optimizer.m]
    b._optimizer.v = [off_line(v) for v in b._optimizer.v]
    for est in (a, b):
        est.partial_fit(X, y)
    for ca, cb in zip(a.coefs_ + a._optimizer.m, b.coefs_ + b._optimizer.m):
        np.testing.assert_array_equal(ca, cb)
        assert cb.ctypes.data % 64 == 0  # replaced by an aligned copy, once


def test_aligned_copies_only_arrays_off_a_cache_line():
    from fastmlp import _engine
    a = _engine.aligned_empty((5, 7), np.float32)
    a[...] = np.arange(35).reshape(5, 7)
    assert _engine.aligned(a) is a  # trained in place
    b = off_line(a)
    c = _engine.aligned(b)
    assert c is not b and c.ctypes.data % 64 == 0 and c.flags.c_contiguous
    np.testing.assert_array_equal(c, a)
    assert not _engine.aligned_zeros_like(b).any()
