"""Dropout (issue 17, item 1): inverted dropout of the hidden units inside the C epoch.

A NumPy copy of the kernels' counter-based generator (fm_dropout_row and
fm_dropout_uniform in csrc/fm_internal.h) gives the mask a training step must use; one
SGD step of the kernels is held to a NumPy step with that mask (the gradient through the
dropped and scaled units), the generator's kept fraction to 1 - p within 3 sigma, and
fits to the same bits for any thread count and any split of the epochs into calls."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

import fastmlp
import numpy_reference
from fastmlp import Network, _engine

X, y = make_classification(n_samples=64, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)
MASK64 = (1 << 64) - 1


def mix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def uniform(seed, epoch, row, unit):
    """fm_dropout_uniform(fm_dropout_row(seed, epoch, row), unit)."""
    h = mix64(mix64(seed ^ mix64(epoch)) ^ row)
    return (mix64(h ^ unit) >> 11) * 2.0 ** -53


def factors(seed, epoch, rows, units, p, unit0=0):
    """The (rows, units) factors: 0 for a dropped unit, 1 / (1 - p) for a kept one."""
    u = np.array([[uniform(seed, epoch, r, unit0 + j) for j in range(units)]
                  for r in range(rows)])
    return np.where(u >= p, 1 / (1 - p), 0.0)


@pytest.mark.parametrize("hidden", ["relu", "tanh", "logistic"])
def test_one_step_is_the_numpy_step_with_the_same_mask(hidden):
    """One full-batch SGD step (no momentum, rows in order, the epoch's key 0) of a
    6-10-8-3 network with dropout 0.3 and 0.5, against NumPy with the generator's mask."""
    rng = np.random.default_rng(1)
    sizes, rates, seed, lr = [6, 10, 8, 3], (0.3, 0.5), 12345, 0.1
    coefs = [rng.normal(scale=0.5, size=(i, o)) for i, o in zip(sizes[:-1], sizes[1:])]
    intercepts = [rng.normal(scale=0.1, size=o) for o in sizes[1:]]
    Y = np.eye(3)[y]
    # NumPy: the forward pass with the masks, the loss gradient, the backward pass
    masks = [factors(seed, 0, len(X), 10, rates[0]),
             factors(seed, 0, len(X), 8, rates[1], unit0=10)]
    acts, raws = [X], []
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        a = numpy_reference.act_ref(acts[-1] @ W + b, hidden if layer < 2 else "softmax",
                                    0.01)
        if layer < 2:
            raws.append(a)
            a = a * masks[layer]
        acts.append(a)
    delta = acts[-1] - Y
    want = [None] * 3, [None] * 3
    for layer in (2, 1, 0):
        want[0][layer] = coefs[layer] - lr * acts[layer].T @ delta / len(X)
        want[1][layer] = intercepts[layer] - lr * delta.sum(axis=0) / len(X)
        if layer:
            delta = ((delta @ coefs[layer].T)
                     * numpy_reference.dact_ref(raws[layer - 1], hidden, 0.01)
                     * masks[layer - 1])
    # the kernels, with this seed and with another
    def kernel_step(seed):
        W, b = _engine.trainable_weights([c.copy() for c in coefs],
                                         [c.copy() for c in intercepts], np.float64, sizes)
        opt = _engine.SGDState(W + b, lr, momentum=0.0, nesterov=False)
        run = dict(opt.schedule_args(), t=0, check_loss=False, tol=0.0,
                   n_iter_no_change=0, best_loss=np.inf, no_improvement=0)
        spec = _engine.spec(hidden, "softmax", "log_loss")
        result = _engine.train_epochs(W, b, spec, X, Y, None, None, 1, len(X), opt, run,
                                      dropout=rates, dropout_seed=seed)
        assert result.error is None
        return W + b
    for got, expected in zip(kernel_step(seed), want[0] + want[1]):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(kernel_step(seed + 1)[0], want[0][0], rtol=1e-6)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_the_kept_fraction_is_one_minus_p(p):
    """Over 200 rows x 100 units of one epoch the generator keeps 1 - p of the units,
    within 3 sigma; and rows, units and epochs are not correlated (each row's mask and
    the next epoch's differ)."""
    f = factors(7, 3, 200, 100, p)
    kept = (f > 0).mean()
    sigma = np.sqrt(p * (1 - p) / f.size)
    assert abs(kept - (1 - p)) < 3 * sigma
    assert not np.array_equal(f[0], f[1])
    assert not np.array_equal(f, factors(7, 4, 200, 100, p))


def fit(estimator, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y, **kwargs)


def test_same_bits_for_any_thread_count_and_any_epochs_per_call(monkeypatch):
    models = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            models.append(fit(fastmlp.MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=6,
                                                    dropout=[0.2, 0.4], random_state=0)))
            models.append(Network([6, 16, 8, 3], epochs=6, dropout=0.3, batch_size=16,
                                  random_state=0).fit(X, y))
    monkeypatch.setattr(_engine, "epochs_per_call", lambda n, coefs: 1)
    models.append(fit(fastmlp.MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=6,
                                            dropout=[0.2, 0.4], random_state=0)))
    for a, b in ((models[0], models[2]), (models[0], models[4]), (models[1], models[3])):
        assert a.loss_curve_ == b.loss_curve_
        for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            np.testing.assert_array_equal(u, v)
    without = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(16, 8), max_iter=6,
                                        random_state=0))
    assert without.loss_curve_ != models[0].loss_curve_


def test_nothing_is_dropped_in_prediction():
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, dropout=0.5,
                                      random_state=0))
    h = np.maximum(X @ model.coefs_[0] + model.intercepts_[0], 0)
    want = numpy_reference.act_ref(h @ model.coefs_[1] + model.intercepts_[1], "softmax", 0)
    np.testing.assert_allclose(model.predict_proba(X), want, rtol=1e-10)


def test_zero_dropout_is_no_dropout():
    a = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, random_state=0))
    b = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=4, dropout=[0.0],
                                  random_state=0))
    assert a.loss_curve_ == b.loss_curve_


@pytest.mark.parametrize("params, error, match", [
    (dict(dropout=0.5, solver="lbfgs"), ValueError, "stochastic solvers"),
    (dict(dropout=[0.5]), ValueError, "1 rates, but the network has 2 hidden layers"),
    (dict(dropout=[0.5, 1.0]), ValueError, r"in \[0, 1\)"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(dropout="half"), ValueError, "dropout"),
])
def test_bad_dropout_is_refused(params, error, match):
    with pytest.raises(error, match=match):
        fastmlp.MLPClassifier(hidden_layer_sizes=(4, 4), **params).fit(X, y)
    if params.get("solver") == "lbfgs":  # Network's full-batch solver is rprop
        params = dict(params, solver="rprop")
    with pytest.raises(error, match=match):
        Network([6, 4, 4, 3], **params).fit(X, y)


def test_dropout_survives_clone_pickle_save_and_grid_search(tmp_path):
    import pickle

    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV

    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(8, 4), max_iter=3,
                                      dropout=[0.3, 0.1], random_state=0))
    assert clone(model).get_params()["dropout"] == [0.3, 0.1]
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    model.save(tmp_path / "m.npz")
    loaded = fastmlp.load(tmp_path / "m.npz")
    assert loaded.get_params()["dropout"] == [0.3, 0.1]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    net = Network([6, 8, 3], epochs=2, dropout=0.2, random_state=0).fit(X, y)
    net.save(tmp_path / "n.npz")
    assert fastmlp.load(tmp_path / "n.npz").get_params()["dropout"] == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search = GridSearchCV(fastmlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=3,
                                                    random_state=0),
                              {"dropout": [0.0, 0.5]}, cv=2).fit(X, y)
    assert search.best_params_["dropout"] in (0.0, 0.5)
    assert len(search.cv_results_["params"]) == 2
