"""The drop-ins' prediction fast path: a clean input (a C-contiguous float32/float64
ndarray of the fitted width, finite, on a model fitted without feature names) skips
scikit-learn's validation and label decoding and gives the same outputs, bit for bit,
as scikit-learn's own path; every other input takes that path, so its errors and
warnings are scikit-learn's exactly."""
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import neural_network as sk
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning

import fastmlp

X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                           random_state=0)


def _fit(cls, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return cls(hidden_layer_sizes=(16,), max_iter=30, random_state=0, **params).fit(X, y)


class _Subclass(np.ndarray):
    """Not a plain ndarray: the fast path declines it, and scikit-learn's validation turns
    it into the same array."""


def _slow(model, method, X):
    """The same call through scikit-learn's path (validation, _forward_pass_fast, the
    label binarizer), as every prediction went before the fast path."""
    Xs = X.view(_Subclass)
    assert model._fast_forward(Xs) is None
    return getattr(model, method)(Xs)


MODELS = {
    "multiclass": lambda dt: _fit(fastmlp.MLPClassifier, X.astype(dt), y),
    "binary": lambda dt: _fit(fastmlp.MLPClassifier, X.astype(dt), np.array(["a", "b"])[y % 2]),
    "multilabel": lambda dt: _fit(fastmlp.MLPClassifier, X.astype(dt),
                                  np.column_stack([y == 0, y == 1, y == 2]).astype(int)),
    "regressor": lambda dt: _fit(fastmlp.MLPRegressor, X.astype(dt), X[:, 0] + y),
    "regressor-2d": lambda dt: _fit(fastmlp.MLPRegressor, X.astype(dt),
                                    np.column_stack([X[:, 0], y])),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_fast_path_gives_the_same_outputs_as_scikit_learns_path(kind, dtype):
    model = MODELS[kind](dtype)
    methods = ["predict"] + (["predict_proba", "predict_log_proba"]
                             if kind in ("multiclass", "binary", "multilabel") else [])
    for rows in (X[:1], X[:7], X):
        for in_dtype in (np.float32, np.float64):
            Xc = np.ascontiguousarray(rows, dtype=in_dtype)
            assert model._fast_forward(Xc) is not None
            for method in methods:
                fast = getattr(model, method)(Xc)
                slow = _slow(model, method, Xc)
                assert fast.dtype == slow.dtype and fast.shape == slow.shape
                np.testing.assert_array_equal(fast, slow)


def test_fast_path_runs_the_kernels_without_validation(monkeypatch):
    """A clean input never reaches validate_data; a list does."""
    from fastmlp import _multilayer_perceptron as mlp

    model = MODELS["multiclass"](np.float64)
    calls = []
    real = mlp.validate_data
    monkeypatch.setattr(mlp, "validate_data", lambda *a, **k: calls.append(1) or real(*a, **k))
    model.predict(X[:3])
    assert calls == []
    model.predict(X[:3].tolist())
    assert calls == [1]


def _error(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = call()
        except Exception as exc:  # the type and message are what is compared
            return type(exc), str(exc), [str(w.message) for w in caught]
    return None, repr(np.asarray(out).shape), [str(w.message) for w in caught]


BAD_INPUTS = {
    "nan": lambda: np.where(np.arange(8) == 3, np.nan, X[:2]),
    "inf": lambda: np.where(np.arange(8) == 3, np.inf, X[:2]),
    "wrong-width": lambda: X[:2, :7].copy(),
    "strings": lambda: np.array([["a"] * 8, ["b"] * 8]),
    "empty": lambda: np.empty((0, 8)),
    "3-d": lambda: X[:2].reshape(2, 2, 4),
    "1-d": lambda: X[0].copy(),
    "list": lambda: X[:2].tolist(),
    "sparse": lambda: sp.csr_matrix(X[:2]),
    "fortran": lambda: np.asfortranarray(X[:4]),
    "int": lambda: X[:2].astype(int),
}


@pytest.mark.parametrize("bad", sorted(BAD_INPUTS))
@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_every_other_input_gets_scikit_learns_exact_answer(bad, method):
    ours = _fit(fastmlp.MLPClassifier, X, y)
    theirs = _fit(sk.MLPClassifier, X, y)
    Xb = BAD_INPUTS[bad]()
    assert _error(lambda: getattr(ours, method)(Xb)) == \
        _error(lambda: getattr(theirs, method)(Xb))


@pytest.mark.parametrize("names", ["same", "missing", "other"])
def test_dataframes_and_feature_names_take_scikit_learns_path(names):
    pd = pytest.importorskip("pandas")
    cols = [f"f{i}" for i in range(8)]
    frame = pd.DataFrame(X, columns=cols)
    ours = _fit(fastmlp.MLPClassifier, frame, y)
    theirs = _fit(sk.MLPClassifier, frame, y)
    Xq = {"same": frame.iloc[:5], "missing": X[:5],
          "other": pd.DataFrame(X[:5], columns=cols[::-1])}[names]
    assert _error(lambda: ours.predict(Xq)) == _error(lambda: theirs.predict(Xq))
    if names == "missing":  # a plain array on a model fitted with names: the warning
        assert ours._fast_forward(np.ascontiguousarray(X[:5])) is None


def test_unfitted_model_says_so_as_scikit_learn():
    assert _error(lambda: fastmlp.MLPClassifier().predict(X[:2])) == \
        _error(lambda: sk.MLPClassifier().predict(X[:2]))


def test_fast_path_sees_weights_changed_in_place_or_replaced():
    """The prepared forward pass reads the model's weight arrays at each call: a change
    made in place is seen, and new arrays get a new one; pickling, cloning and saving the
    model carry none of it."""
    import pickle

    from sklearn.base import clone

    model = MODELS["multiclass"](np.float32)
    Xc = np.ascontiguousarray(X[:9], dtype=np.float32)
    before = model.predict_proba(Xc)
    model.coefs_[1] *= -1  # in place
    flipped = model.predict_proba(Xc)
    assert not np.allclose(before, flipped)
    np.testing.assert_array_equal(flipped, _slow(model, "predict_proba", Xc))
    model.coefs_ = [-c for c in model.coefs_]  # new arrays
    np.testing.assert_array_equal(model.predict_proba(Xc), _slow(model, "predict_proba", Xc))
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.predict_proba(Xc), model.predict_proba(Xc))
    clone(model)


def test_fast_path_refuses_nan_and_inf_as_scikit_learn_does():
    """The kernels' finiteness check sends NaN and inf to scikit-learn's path, whose
    error is raised, for float32 and float64 input on float32 and float64 models."""
    for model_dtype in (np.float32, np.float64):
        model = MODELS["multiclass"](model_dtype)
        reference = _fit(sk.MLPClassifier, X.astype(model_dtype), y)
        for in_dtype in (np.float32, np.float64):
            for bad in (np.nan, np.inf):
                Xb = np.array(X[:4], dtype=in_dtype)  # a copy: X is shared
                Xb[2, 3] = bad
                assert model._fast_forward(Xb) is None
                assert _error(lambda: model.predict(Xb)) == \
                    _error(lambda: reference.predict(Xb))


@pytest.mark.parametrize("compute_dtype", [None, "bfloat16"])
def test_fast_path_finds_nan_and_inf_in_any_chunk_of_many_rows(compute_dtype):
    """The kernels check the rows chunk by chunk (1,024 rows each, on all threads) as the
    forward pass reads them: a NaN or inf in the first row, in a chunk in the middle or
    in the last value of the last, partial chunk sends the call to scikit-learn's path
    and its error; clean rows give the validated path's outputs bit for bit."""
    model = _fit(fastmlp.MLPClassifier, X.astype(np.float32), y, compute_dtype=compute_dtype)
    many = np.tile(X.astype(np.float32), (17, 1))  # 5,100 rows: four chunks and a part
    np.testing.assert_array_equal(model.predict_proba(many), _slow(model, "predict_proba", many))
    for row, col in ((0, 0), (2500, 5), (len(many) - 1, 7)):
        for bad in (np.nan, np.inf, -np.inf):
            Xb = many.copy()
            Xb[row, col] = bad
            assert model._fast_forward(Xb) is None
            assert _error(lambda: model.predict(Xb)) == \
                _error(lambda: _slow(model, "predict", Xb))


@pytest.mark.parametrize("output", ["softmax", "logistic", "identity"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_network_fast_path_gives_the_same_outputs_and_errors(output, dtype):
    """Network's predict and predict_proba on clean arrays (either float dtype) equal the
    validated path's bit for bit; NaN, inf and a wrong width still raise its errors."""
    n_out = 1 if output == "identity" else 3
    target = X[:, 0] if output == "identity" else y
    net = fastmlp.Network([8, 12, n_out], output=output, epochs=3, dtype=dtype,
                          random_state=0).fit(X, target)
    methods = ["predict"] + (["predict_proba"] if output != "identity" else [])
    for in_dtype in (np.float32, np.float64):
        Xc = np.ascontiguousarray(X[:11], dtype=in_dtype)
        assert net._fast_forward(Xc) is not None
        for method in methods:
            fast = getattr(net, method)(Xc)
            slow = getattr(net, method)(Xc.view(_Subclass))
            assert fast.dtype == slow.dtype
            np.testing.assert_array_equal(fast, slow)
        for bad in (np.nan, np.inf):
            Xb = np.array(Xc)
            Xb[1, 2] = bad
            assert net._fast_forward(Xb) is None
            assert _error(lambda: net.predict(Xb)) == \
                _error(lambda: net.predict(Xb.view(_Subclass)))
    wide = np.zeros((2, 9), dtype=dtype)
    assert net._fast_forward(wide) is None
    assert _error(lambda: net.predict(wide))[0] is ValueError


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_dataframe_with_the_fitted_names_takes_the_fast_path(dtype):
    """Columns equal to feature_names_in_ (in order, one float dtype): the fast path, with
    scikit-learn's path's outputs bit for bit; other columns, order or dtypes: its path."""
    pd = pytest.importorskip("pandas")
    cols = [f"f{i}" for i in range(8)]
    frame = pd.DataFrame(X.astype(dtype), columns=cols)
    model = _fit(fastmlp.MLPClassifier, frame, y)
    for rows in (frame.iloc[:1], frame.iloc[:9], frame):
        assert model._fast_forward(rows) is not None
        for method in ("predict", "predict_proba"):
            fast = getattr(model, method)(rows)
            slow = getattr(sk.MLPClassifier, method)(model, rows)  # validation's path
            assert fast.dtype == slow.dtype
            np.testing.assert_array_equal(fast, slow)
    mixed = frame.astype({"f0": np.float32 if dtype == np.float64 else np.float64})
    for other in (frame[cols[::-1]], frame.rename(columns={"f0": "g0"}), mixed,
                  frame.astype({"f1": np.int64})):
        assert model._fast_forward(other) is None
    nan = frame.iloc[:3].copy()
    nan.iloc[1, 2] = np.nan
    assert _error(lambda: model.predict(nan)) == \
        _error(lambda: sk.MLPClassifier.predict(model, nan))
