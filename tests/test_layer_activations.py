"""One activation per hidden layer (issue 17, item 3): `activation` may be a list with one
name per hidden layer, in the drop-ins and in Network.

The kernels' loss and gradient of a network with mixed activations are held to a NumPy
forward and backward pass; a list of one name repeated is the same fit, bit for bit, as
the name alone; the parameter is validated, cloned, pickled and saved."""
import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

import fastmlp
import numpy_reference
from fastmlp import Network, _engine

X, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3,
                           random_state=0)
SLOPE = 0.01


def numpy_loss_and_grad(coefs, intercepts, hidden, Xa, Y):
    """Softmax output, categorical log loss (mean over rows): loss and gradients."""
    acts = [Xa]
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        name = hidden[layer] if layer < len(hidden) else "softmax"
        acts.append(numpy_reference.act_ref(acts[-1] @ W + b, name, SLOPE))
    n = len(Xa)
    loss = -np.sum(Y * np.log(np.clip(acts[-1], 1e-7, 1))) / n
    delta = (acts[-1] - Y) / n
    gW, gb = [None] * len(coefs), [None] * len(coefs)
    for layer in range(len(coefs) - 1, -1, -1):
        gW[layer], gb[layer] = acts[layer].T @ delta, delta.sum(axis=0)
        if layer:
            delta = (delta @ coefs[layer].T) * numpy_reference.dact_ref(
                acts[layer], hidden[layer - 1], SLOPE)
    return loss, gW, gb


def test_mixed_activations_match_numpy():
    hidden = ["tanh", "relu", "logistic", "leaky_relu"]
    rng = np.random.default_rng(0)
    sizes = [6, 9, 8, 7, 5, 3]
    coefs = [rng.normal(scale=0.5, size=(i, o)) for i, o in zip(sizes[:-1], sizes[1:])]
    intercepts = [rng.normal(scale=0.1, size=o) for o in sizes[1:]]
    Y = np.eye(3)[y]
    spec = _engine.spec(hidden, "softmax", "log_loss", SLOPE)
    loss, gW, gb = _engine.loss_and_grad(coefs, intercepts, spec, X, Y)
    want_loss, want_gW, want_gb = numpy_loss_and_grad(coefs, intercepts, hidden, X, Y)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    for got, want in zip(gW + gb, want_gW + want_gb):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # and each layer's activation matters: the same names in another order differ
    other = _engine.spec(hidden[::-1], "softmax", "log_loss", SLOPE)
    assert _engine.loss_and_grad(coefs, intercepts, other, X, Y)[0] != pytest.approx(loss)


def fit(estimator):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(X, y)


@pytest.mark.parametrize("solver", ["sgd", "adam", "lbfgs"])
@pytest.mark.parametrize("name", ["logistic", "relu"])
def test_a_repeated_name_is_the_name(solver, name):
    """["relu", "relu"] trains exactly as "relu" (initial weights included: logistic has
    its own Glorot bound)."""
    params = dict(hidden_layer_sizes=(7, 5), solver=solver, max_iter=5, random_state=0)
    one = fit(fastmlp.MLPClassifier(activation=name, **params))
    two = fit(fastmlp.MLPClassifier(activation=[name, name], **params))
    assert one.loss_ == two.loss_
    for a, b in zip(one.coefs_ + one.intercepts_, two.coefs_ + two.intercepts_):
        np.testing.assert_array_equal(a, b)
    net_one = Network([6, 7, 5, 3], activation=name, epochs=3, random_state=0).fit(X, y)
    net_two = Network([6, 7, 5, 3], activation=[name, name], epochs=3,
                      random_state=0).fit(X, y)
    assert net_one.loss_curve_ == net_two.loss_curve_


def test_each_layer_is_initialised_by_its_activation():
    """scikit-learn's Glorot bound is sqrt(2 / (fan_in + fan_out)) after logistic units
    and sqrt(6 / ...) otherwise; Network's init="auto" takes He for relu layers."""
    # a step too small to move the weights leaves the initial ones
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(40, 40), max_iter=1,
                                      learning_rate_init=1e-12, solver="sgd",
                                      activation=["logistic", "relu"], random_state=0))
    assert model.activation == ["logistic", "relu"]
    bounds = [np.abs(W).max() for W in model.coefs_]
    assert bounds[0] <= np.sqrt(2 / 46) < bounds[1] <= np.sqrt(6 / 80)
    assert bounds[1] > 0.9 * np.sqrt(6 / 80) and bounds[2] <= np.sqrt(6 / 43)
    net = Network([6, 400, 400, 3], activation=["sigmoid", "relu"], epochs=0,
                  random_state=0)
    net._initialize([6, 400, 400, 3], np.random.RandomState(0))
    assert np.abs(net.coefs_[0]).max() <= np.sqrt(6 / 406)  # Glorot uniform
    assert np.std(net.coefs_[1]) == pytest.approx(np.sqrt(2 / 400), rel=0.02)  # He


@pytest.mark.parametrize("activation, match", [
    (["relu"], "1 activations, but the network has 2 hidden layers"),
    (["relu", "relu", "tanh"], "3 activations"),
    (["relu", "swish"], "swish"),
    ([], "empty list"),
])
def test_bad_lists_are_refused(activation, match):
    with pytest.raises(ValueError, match=match):
        fastmlp.MLPClassifier(hidden_layer_sizes=(4, 4), activation=activation).fit(X, y)
    with pytest.raises(ValueError, match=match):
        Network([6, 4, 4, 3], activation=activation).fit(X, y)


def test_drop_ins_take_scikit_learns_names_only():
    with pytest.raises(ValueError, match="sigmoid"):
        fastmlp.MLPClassifier(hidden_layer_sizes=(4, 4),
                              activation=["sigmoid", "relu"]).fit(X, y)


def test_a_list_survives_clone_pickle_and_save(tmp_path):
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(5, 4), max_iter=3,
                                      activation=["tanh", "leaky_relu"], random_state=0))
    assert clone(model).get_params()["activation"] == ["tanh", "leaky_relu"]
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))
    model.save(tmp_path / "m.npz")
    loaded = fastmlp.load(tmp_path / "m.npz")
    assert loaded.get_params()["activation"] == ["tanh", "leaky_relu"]
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    net = Network([6, 5, 4, 3], activation=["tanh", "relu"], epochs=2, random_state=0)
    net.fit(X, y).save(tmp_path / "n.npz")
    np.testing.assert_array_equal(fastmlp.load(tmp_path / "n.npz").predict_proba(X),
                                  net.predict_proba(X))


def test_onnx_exports_one_activation_per_layer():
    pytest.importorskip("skl2onnx", reason="skl2onnx (fastmlp[onnx]) missing")
    rt = pytest.importorskip("onnxruntime", reason="onnxruntime (fastmlp[onnx]) missing")
    from fastmlp.onnx import to_onnx
    X32 = X.astype(np.float32)
    model = fit(fastmlp.MLPClassifier(hidden_layer_sizes=(5, 4), max_iter=30,
                                      activation=["tanh", "leaky_relu"], random_state=0))
    session = rt.InferenceSession(to_onnx(model, X32[:1]).SerializeToString(),
                                  providers=["CPUExecutionProvider"])
    labels, proba = session.run(None, {"X": X32})
    np.testing.assert_array_equal(labels, model.predict(X32))
    np.testing.assert_allclose(proba, model.predict_proba(X32), rtol=0, atol=1e-5)
