"""solver='rprop' (iRprop-, Igel and Huesken 2000): the vectorised update against a
plain per-weight reference on a fixed gradient sequence, the training loss falling on
small data sets, determinism, the stopping rule, validation, and Network."""
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits, load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

from fastmlp import MLPClassifier, MLPRegressor, Network, _engine


def irprop_minus_reference(w, gradients, step_init, eta_plus, eta_minus, step_min,
                           step_max):
    """iRprop- weight by weight, as the paper's pseudo-code (Igel and Huesken 2000,
    fig. 4): the weights after each gradient of the sequence."""
    w = [float(v) for v in w]
    step = [step_init] * len(w)
    previous = [0.0] * len(w)
    path = []
    for g in gradients:
        g = [float(v) for v in g]
        for i in range(len(w)):
            if previous[i] * g[i] > 0:
                step[i] = min(step[i] * eta_plus, step_max)
            elif previous[i] * g[i] < 0:
                step[i] = max(step[i] * eta_minus, step_min)
                g[i] = 0.0
            w[i] -= (g[i] > 0) * step[i] - (g[i] < 0) * step[i]
            previous[i] = g[i]
        path.append(list(w))
    return np.array(path)


def test_the_update_is_iRprop_minus():
    rng = np.random.default_rng(0)
    n, iterations = 40, 60
    # signs that persist, flip and vanish; magnitudes over many orders
    gradients = rng.choice([-1.0, 0.0, 1.0, 1.0], size=(iterations, n)) * 10.0 ** rng.uniform(
        -8, 3, size=(iterations, n))
    gradients[:, :5] = 1.0  # steps grow to step_max
    gradients[:, 5:10] = (-1.0) ** np.arange(iterations)[:, None]  # shrink to step_min
    w0 = rng.normal(size=n)
    settings = dict(step_init=0.1, eta_plus=1.2, eta_minus=0.5, step_min=1e-3, step_max=2.0)
    want = irprop_minus_reference(w0, gradients, **settings)
    rprop = _engine.IRpropMinus(n, np.float64, *settings.values())
    w = w0.copy()
    for g, expected in zip(gradients, want):
        rprop.update(w, g.copy())
        np.testing.assert_array_equal(w, expected)
    assert rprop.step[:5].tolist() == [2.0] * 5 and rprop.step[5:10].tolist() == [1e-3] * 5


def fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def data(name):
    X, y = {"iris": load_iris, "digits": load_digits}[name](return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.mark.parametrize("name", ["iris", "digits"])
def test_the_training_loss_falls(name):
    X, y = data(name)
    model = fit(MLPClassifier(solver="rprop", hidden_layer_sizes=(20,), max_iter=60,
                              random_state=0), X, y)
    assert len(model.loss_curve_) == model.n_iter_ > 10
    assert model.loss_curve_[-1] < 0.25 * model.loss_curve_[0]
    assert model.score(X, y) > 0.9
    net = fit(Network([X.shape[1], 20, 10 if name == "digits" else 3], solver="rprop",
                      epochs=60, random_state=0), X, y)
    assert net.loss_curve_[-1] < 0.25 * net.loss_curve_[0] and net.score(X, y) > 0.9


def test_fits_are_deterministic_and_rprop_is_not_adam():
    X, y = data("iris")
    make = lambda **kw: fit(MLPClassifier(hidden_layer_sizes=(8,), max_iter=20,
                                          random_state=0, **kw), X, y)
    a, b = make(solver="rprop"), make(solver="rprop")
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)
    assert a.loss_curve_ == b.loss_curve_
    assert not np.array_equal(a.coefs_[0], make(solver="adam").coefs_[0])
    slower = make(solver="rprop", eta_plus=1.05, step_init=0.01)
    assert slower.loss_curve_[5] != a.loss_curve_[5]  # the parameters are used


def test_stopping_max_iter_and_tol():
    X, y = data("iris")
    with pytest.warns(ConvergenceWarning, match="Rprop: Maximum iterations \\(7\\)"):
        model = MLPRegressor(solver="rprop", hidden_layer_sizes=(5,), max_iter=7,
                             random_state=0).fit(X, y.astype(float))
    assert model.n_iter_ == 7 and model.loss_ == model.loss_curve_[-1]
    # a tol no iteration after the first (which improves on inf) can meet: the rule
    # stops once n_iter_no_change + 1 iterations have not improved, as scikit-learn's
    model = MLPClassifier(solver="rprop", hidden_layer_sizes=(5,), max_iter=100, tol=1e9,
                          n_iter_no_change=3, random_state=0).fit(X, y)
    assert model.n_iter_ == 1 + 3 + 1


def test_bad_parameters_are_refused():
    X, y = data("iris")
    for bad, match in [(dict(eta_plus=1.0), "eta_plus"), (dict(eta_minus=1.5), "eta_minus"),
                       (dict(step_min=-1.0), "step_min"), (dict(step_init=0), "step_init"),
                       (dict(step_init=60.0), "step_min <= step_init <= step_max")]:
        with pytest.raises(ValueError, match=match):
            MLPClassifier(solver="rprop", **bad).fit(X, y)
        with pytest.raises(ValueError, match=match):
            Network([4, 3], solver="rprop", **bad).fit(X, y)
    assert not hasattr(MLPClassifier(solver="rprop"), "partial_fit")


def test_network_keeps_the_step_sizes_between_partial_fits():
    X, y = data("iris")
    params = dict(sizes=[4, 6, 3], solver="rprop", random_state=0, dtype=np.float64)
    whole = Network(epochs=5, **params).fit(X, y)
    steps = Network(**params)
    for _ in range(5):
        steps.partial_fit(X, y, classes=[0, 1, 2])
    assert steps.loss_curve_ == whole.loss_curve_
    for u, v in zip(whole.coefs_ + whole.intercepts_, steps.coefs_ + steps.intercepts_):
        np.testing.assert_array_equal(u, v)


def test_a_non_finite_loss_raises_and_keeps_the_weights(monkeypatch):
    X, y = data("iris")
    kernels_loss_and_grad, calls = _engine.loss_and_grad, []

    def nan_on_the_third_call(*args, **kwargs):
        calls.append(1)
        loss, gW, gb = kernels_loss_and_grad(*args, **kwargs)
        return (np.nan if len(calls) == 3 else loss), gW, gb

    net = Network([4, 6, 3], solver="rprop", epochs=2, random_state=0).fit(X, y)
    monkeypatch.setattr(_engine, "loss_and_grad", nan_on_the_third_call)
    net.partial_fit(X, y)
    net.partial_fit(X, y)  # epochs 3 and 4, calls 1 and 2
    before = [a.copy() for a in net.coefs_ + net.intercepts_]
    with pytest.raises(ValueError, match="training diverged in epoch 5: the loss or its "
                                         "gradient is not finite"):
        net.partial_fit(X, y)
    assert net.n_iter_ == 4 and len(net.loss_curve_) == 4
    for kept, was in zip(net.coefs_ + net.intercepts_, before):
        np.testing.assert_array_equal(kept, was)
    calls.clear()
    with pytest.raises(ValueError, match="Solver diverged in iteration 3"):
        MLPClassifier(solver="rprop", hidden_layer_sizes=(5,), random_state=0).fit(X, y)
