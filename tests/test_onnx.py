"""ONNX export: onnxruntime predicts what fastmlp predicts."""
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

pytest.importorskip("skl2onnx", reason="skl2onnx (fastmlp[onnx]) missing")
rt = pytest.importorskip("onnxruntime", reason="onnxruntime (fastmlp[onnx]) missing")

import fastmlp  # noqa: E402
from fastmlp import MLPClassifier, MLPRegressor  # noqa: E402
from fastmlp.onnx import to_onnx  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)


def run_onnx(model, X):
    session = rt.InferenceSession(to_onnx(model, X[:1]).SerializeToString(),
                                  providers=["CPUExecutionProvider"])
    return session.run(None, {"X": X})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 6)).astype(np.float32)
    signal = X[:, 0] + 0.5 * X[:, 1] * X[:, 2]
    return X, signal


def targets(kind, signal, X):
    """Classification targets of every kind skl2onnx's classifier converter handles."""
    if kind == "binary":
        return np.where(signal > 0, "yes", "no")
    if kind == "multiclass":
        return np.digitize(signal, [-0.5, 0.5]) + 3
    # Multilabel with three labels (two are refused, see below).
    return np.column_stack([signal > 0, X[:, 3] > 0, X[:, 4] > X[:, 5]]).astype(int)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("activation", ["identity", "logistic", "tanh", "relu"])
def test_classifier_labels_and_probabilities(data, kind, activation):
    X, signal = data
    y = targets(kind, signal, X)
    model = MLPClassifier(hidden_layer_sizes=(16, 8), activation=activation, max_iter=60,
                          random_state=0).fit(X, y)
    assert model.coefs_[0].dtype == np.float32
    labels, proba = run_onnx(model, X)
    np.testing.assert_array_equal(labels, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-5)


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.float64, 1e-12)])
@pytest.mark.parametrize("activation", ["identity", "relu"])
def test_regressor_values(data, activation, dtype, tol):
    X, signal = data
    X = X.astype(dtype)
    model = MLPRegressor(hidden_layer_sizes=(16,), activation=activation, max_iter=80,
                         random_state=0).fit(X, 3 * signal)
    (values,) = run_onnx(model, X)
    expected = model.predict(X)
    assert values.dtype == expected.dtype == dtype
    assert np.ptp(expected) > 1  # a fitted model, not a constant one
    np.testing.assert_allclose(values.ravel(), expected, rtol=tol, atol=tol)


def test_pipeline_and_loaded_model(data, tmp_path):
    X, signal = data
    y = targets("multiclass", signal, X)
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,),
                                                             max_iter=60, random_state=0))
    pipeline.fit(X, y)
    labels, proba = run_onnx(pipeline, X)
    np.testing.assert_array_equal(labels, pipeline.predict(X))
    np.testing.assert_allclose(proba, pipeline.predict_proba(X), rtol=0, atol=1e-5)

    # A saved and loaded model rebuilds what the converter reads (the label binarizer).
    model = pipeline[-1]
    model.save(tmp_path / "model.npz")
    loaded = fastmlp.load(tmp_path / "model.npz")
    Xs = pipeline[0].transform(X)
    labels, proba = run_onnx(loaded, Xs)
    np.testing.assert_array_equal(labels, model.predict(Xs))
    np.testing.assert_allclose(proba, model.predict_proba(Xs), rtol=0, atol=1e-5)


@pytest.mark.parametrize("model, target", [
    (MLPClassifier(hidden_layer_sizes=(8, 4), activation="leaky_relu", max_iter=60,
                   random_state=0), lambda s, X: s > 0),
    (MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=60, random_state=0),
     lambda s, X: np.exp(s)),
    (MLPRegressor(hidden_layer_sizes=(8,), max_iter=60, random_state=0),
     lambda s, X: np.column_stack([s, -s])),
    (MLPClassifier(hidden_layer_sizes=(8,), max_iter=60, random_state=0),
     lambda s, X: np.column_stack([s > 0, X[:, 3] > 0]).astype(int)),
], ids=["leaky_relu", "poisson", "multi-output", "two-labels"])
def test_what_skl2onnx_cannot_convert(data, model, target):
    """leaky_relu, the Poisson loss's exp output, several regression outputs and
    multilabel with two labels (skl2onnx's own MLP converter refuses or mistranslates
    them) predict the same in onnxruntime."""
    X, signal = data
    model.fit(X, target(signal, X))
    outputs = run_onnx(model, X)
    if isinstance(model, MLPClassifier):
        np.testing.assert_array_equal(outputs[0], model.predict(X))
        np.testing.assert_allclose(outputs[1], model.predict_proba(X), rtol=0, atol=1e-5)
    else:
        expected = model.predict(X).reshape(len(X), -1)
        np.testing.assert_allclose(outputs[0], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("output, target", [
    ("softmax", "multiclass"), ("sigmoid", "multiclass"), ("logistic", "binary"),
    ("logistic", "multilabel"), ("softmax", "multilabel"), ("identity", "regression"),
])
@pytest.mark.parametrize("activation", ["sigmoid", "relu", "leaky_relu", "tanh"])
def test_network_models(data, activation, output, target):
    """Network models, with the notes' names: labels as Network.predict decodes them,
    probabilities as its predict_proba (logistic units on class labels normalised)."""
    X, signal = data
    y = 3 * signal if target == "regression" else targets(target, signal, X)
    n_out = {"multiclass": 3, "binary": 1, "multilabel": 3, "regression": 1}[target]
    net = fastmlp.Network([6, 10, n_out], activation=activation, output=output,
                          epochs=5, random_state=0).fit(X, y)
    outputs = run_onnx(net, X)
    if target == "regression":
        np.testing.assert_allclose(outputs[0].ravel(), net.predict(X), rtol=1e-5, atol=1e-5)
    else:
        np.testing.assert_array_equal(outputs[0], net.predict(X))
        np.testing.assert_allclose(outputs[1], net.predict_proba(X), rtol=0, atol=1e-5)
