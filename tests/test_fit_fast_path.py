"""The drop-ins' fast path for the fit's input validation (`_fast_validate_input`): for a
clean input (a plain float32/float64 ndarray X, finite; integer labels for the
classifier, a finite float target for the regressor) it skips scikit-learn's
validate_data and LabelBinarizer and must leave exactly what scikit-learn's
`_validate_input` leaves: the same X object, the same binarized y, the same classes_,
label binarizer (pickled with the model), n_features_in_ and feature_names_in_, so the
same fitted model bit for bit. Every other input, and every input that a check refuses,
takes scikit-learn's path: its exceptions and warnings, exactly.

scikit-learn's path is forced by making `_fast_validate_input` decline everything."""
import contextlib
import pickle
import warnings

import numpy as np
import pytest
import sklearn
from sklearn import neural_network as sk
from sklearn.datasets import make_classification, make_regression

import fastmlp

X, Y3 = make_classification(n_samples=60, n_features=5, n_informative=3, n_classes=3,
                            random_state=0)
XR, YR = make_regression(n_samples=60, n_features=5, n_targets=2, random_state=0)
Y2 = Y3 % 2

ESTIMATORS = (fastmlp.MLPClassifier, fastmlp.MLPRegressor)


@contextlib.contextmanager
def scikit_learns_path():
    """Every fit inside validates through scikit-learn's own _validate_input."""
    with pytest.MonkeyPatch.context() as mp:
        for cls in ESTIMATORS:
            mp.setattr(cls, "_fast_validate_input", lambda self, *args: None)
        yield


@contextlib.contextmanager
def count_fast(taken):
    """Appends to `taken` whether each _validate_input took the fast path."""
    with pytest.MonkeyPatch.context() as mp:
        for cls in ESTIMATORS:
            real = cls._fast_validate_input

            def spy(self, *args, real=real):
                out = real(self, *args)
                taken.append(out is not None)
                return out
            mp.setattr(cls, "_fast_validate_input", spy)
        yield


def run(make, steps):
    """A new estimator make() put through steps [(method, X, y, kwargs)]; returns it, or
    the (type, message) of the exception a step raised, with the warnings' messages."""
    est = make()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            for method, Xs, ys, kwargs in steps:
                getattr(est, method)(Xs, ys, **kwargs)
            error = None
        except Exception as exc:  # the type and message are what is compared
            error = (type(exc), str(exc))
    return est, error, [(w.category, str(w.message)) for w in caught]


def assert_same_model(a, b):
    """Fitted the same: weights bit for bit, the curves, the label state and the feature
    attributes; and the same pickle (every attribute, the binarizer's with it)."""
    for got, want in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert getattr(a, "loss_curve_", None) == getattr(b, "loss_curve_", None)
    assert a.n_iter_ == b.n_iter_
    assert a.n_features_in_ == b.n_features_in_
    assert hasattr(a, "feature_names_in_") == hasattr(b, "feature_names_in_")
    if hasattr(b, "classes_"):
        assert a.classes_.dtype == b.classes_.dtype
        np.testing.assert_array_equal(a.classes_, b.classes_)
        assert a._label_binarizer.__dict__.keys() == b._label_binarizer.__dict__.keys()
        assert pickle.dumps(a._label_binarizer) == pickle.dumps(b._label_binarizer)
    assert pickle.dumps(a) == pickle.dumps(b)


def read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def fit(Xs, ys, **kwargs):
    return ("fit", Xs, ys, kwargs)


def partial(Xs, ys, **kwargs):
    return ("partial_fit", Xs, ys, kwargs)


def clf(**params):
    return lambda: fastmlp.MLPClassifier(**{**dict(hidden_layer_sizes=(7,), max_iter=15,
                                                    random_state=0), **params})


def reg(**params):
    return lambda: fastmlp.MLPRegressor(**{**dict(hidden_layer_sizes=(7,), max_iter=15,
                                                   random_state=0), **params})


def frame(Xs):
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(Xs, columns=[f"f{i}" for i in range(Xs.shape[1])])


# name: (estimator, steps, whether every validation takes the fast path)
SAME = {
    "binary": (clf(), lambda: [fit(X, Y2)], True),
    "multiclass": (clf(), lambda: [fit(X, Y3)], True),
    "one-class": (clf(), lambda: [fit(X, np.full(60, 4))], True),
    "int8": (clf(), lambda: [fit(X, (Y3 - 1).astype(np.int8))], True),
    "uint8": (clf(), lambda: [fit(X, Y3.astype(np.uint8))], True),
    "uint64-binary": (clf(), lambda: [fit(X, (Y2 * 7 + 2).astype(np.uint64))], True),
    "int32-gaps": (clf(), lambda: [fit(X, (Y3 * 5 - 3).astype(np.int32))], True),
    "float32-X": (clf(), lambda: [fit(X.astype(np.float32), Y3)], True),
    "fortran-X": (clf(), lambda: [fit(np.asfortranarray(X), Y3)], True),
    "strided-X-and-y": (clf(), lambda: [fit(np.vstack([X, X])[::2, ::2], np.repeat(Y3, 2)[::2])],
                        True),
    "read-only-X": (clf(), lambda: [fit(read_only(X), Y3)], True),
    "one-row": (clf(), lambda: [fit(X[:1], Y3[:1])], True),
    "lbfgs": (clf(solver="lbfgs"), lambda: [fit(X, Y3)], True),
    "rprop": (clf(solver="rprop"), lambda: [fit(X, Y3)], True),
    "sgd-early-stopping": (clf(solver="sgd", early_stopping=True), lambda: [fit(X, Y3)], True),
    "bfloat16": (clf(compute_dtype="bfloat16"), lambda: [fit(X, Y3)], True),
    "refit-other-classes": (clf(), lambda: [fit(X, Y3), fit(X, Y2 + 5)], True),
    "warm-start": (clf(warm_start=True), lambda: [fit(X, Y3), fit(X[::-1], Y3[::-1])], True),
    "partial-fit": (clf(), lambda: [partial(X[:20], Y3[:20], classes=np.array([0, 1, 2])),
                                    partial(X[20:], Y3[20:]), partial(X[:5], np.zeros(5, int))],
                    True),
    "partial-fit-then-fit": (clf(), lambda: [partial(X, Y2, classes=np.array([0, 1])),
                                             fit(X, Y3)], True),
    "dataframe-then-array": (clf(), lambda: [fit(frame(X), Y3), fit(X, Y3)], None),
    # scikit-learn's path, for both: the fast path declines these
    "partial-fit-array-after-dataframe": (  # warned of: no feature names
        clf(), lambda: [partial(frame(X), Y3, classes=[0, 1, 2]), partial(X, Y3)], False),
    "list-X": (clf(), lambda: [fit(X.tolist(), Y3)], False),
    "list-y": (clf(), lambda: [fit(X, Y3.tolist())], False),
    "dataframe": (clf(), lambda: [fit(frame(X), Y3)], False),
    "column-y": (clf(), lambda: [fit(X, Y3[:, None])], False),
    "string-y": (clf(), lambda: [fit(X, np.array(["a", "b", "c"])[Y3])], False),
    "bool-y": (clf(), lambda: [fit(X, Y2.astype(bool))], False),
    "big-endian-y": (clf(), lambda: [fit(X, Y3.astype(">i4"))], False),
    "float-integral-y": (clf(), lambda: [fit(X, Y3.astype(float))], False),
    "classes-over-half-the-rows": (clf(), lambda: [fit(X, np.arange(60) % 31)], False),
    "classes-half-the-rows": (clf(), lambda: [fit(X, np.arange(60) % 30)], True),
    "int-X": (clf(), lambda: [fit((X * 10).astype(int), Y3)], False),
    "multilabel": (clf(), lambda: [fit(X, np.column_stack([Y3 == 0, Y3 == 1]).astype(int))],
                   False),
    "partial-fit-classes-int64-y-int8": (
        clf(), lambda: [partial(X, Y3.astype(np.int8), classes=np.array([0, 1, 2]))], False),
    # the regressor
    "regressor": (reg(), lambda: [fit(X, XR[:, 0] + Y3)], True),
    "regressor-2d": (reg(), lambda: [fit(XR, YR)], True),
    "regressor-float32": (reg(), lambda: [fit(XR.astype(np.float32),
                                              YR.astype(np.float32))], True),
    "regressor-strided-y": (reg(), lambda: [fit(XR, YR[:, 1])], True),
    "regressor-lbfgs": (reg(solver="lbfgs"), lambda: [fit(XR, YR)], True),
    "regressor-warm-start": (reg(warm_start=True), lambda: [fit(XR, YR), fit(XR[:30], YR[:30])],
                             True),
    "regressor-partial-fit": (reg(), lambda: [partial(XR[:30], YR[:30]),
                                              partial(XR[30:], YR[30:])], True),
    "regressor-column-y": (reg(), lambda: [fit(XR, YR[:, :1])], False),
    "regressor-int-y": (reg(), lambda: [fit(XR, (YR[:, 0] * 10).astype(int))], False),
    "regressor-list-y": (reg(), lambda: [fit(XR, YR[:, 0].tolist())], False),
}


@pytest.mark.parametrize("case", sorted(SAME))
def test_fast_path_fits_the_same_model_as_scikit_learns_path(case):
    make, steps, fast = SAME[case]
    taken = []
    with count_fast(taken):
        ours, error, warned = run(make, steps())
    with scikit_learns_path():
        theirs, their_error, their_warned = run(make, steps())
    assert error is None and their_error is None, (error, their_error)
    assert [w for w in warned if "Maximum iterations" not in w[1]] == \
        [w for w in their_warned if "Maximum iterations" not in w[1]]
    if fast is not None:
        assert taken and all(t == fast for t in taken), taken
    else:  # a DataFrame, then an array: the array's fit takes the fast path
        assert taken == [False, True]
    assert_same_model(ours, theirs)


@pytest.mark.parametrize("Estimator, Xs, ys", [
    (fastmlp.MLPClassifier, X, Y3), (fastmlp.MLPClassifier, np.asfortranarray(X), Y2),
    (fastmlp.MLPClassifier, X.astype(np.float32), Y3[::-1].astype(np.uint16)),
    (fastmlp.MLPRegressor, XR, YR), (fastmlp.MLPRegressor, XR[:, ::2], YR[:, 0]),
])
def test_validate_input_returns_what_scikit_learns_returns(Estimator, Xs, ys):
    """The very X object (scikit-learn does not copy a float ndarray), and y of the same
    dtype, shape, memory order and values; the same state set on the estimator."""
    ours, theirs = Estimator(), Estimator()
    theirs.feature_names_in_ = ours.feature_names_in_ = np.array(["a"], dtype=object)
    got = ours._validate_input(Xs, ys, False, True)
    with scikit_learns_path():
        want = theirs._validate_input(Xs, ys, False, True)
    assert got[0] is Xs and want[0] is Xs
    for a, b in zip(got[1:], want[1:]):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.flags.c_contiguous == b.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    assert vars(ours).keys() == vars(theirs).keys()
    assert not hasattr(ours, "feature_names_in_")
    assert pickle.dumps(ours) == pickle.dumps(theirs)


def test_binarizer_is_what_label_binarizer_fit_leaves():
    """Read back from a pickle, the binarizer decodes and encodes as a fitted one does."""
    from sklearn.preprocessing import LabelBinarizer

    for ys in (Y2, Y3, np.full(60, 3, dtype=np.int16), (Y3 * 100).astype(np.uint32)):
        model = fastmlp.MLPClassifier(max_iter=1)
        model._validate_input(X, ys, False, True)
        fitted = LabelBinarizer().fit(ys)
        assert vars(model._label_binarizer).keys() == vars(fitted).keys()
        assert pickle.dumps(model._label_binarizer) == pickle.dumps(fitted)
        assert model.classes_ is model._label_binarizer.classes_


def bad(Xs, ys, make=clf(), before=()):
    return make, lambda: [*before, fit(Xs, ys)]


def nan_at(a, where, value=np.nan):
    a = np.array(a, dtype=float)
    a.flat[where] = value
    return a


BAD = {
    "nan-X": bad(nan_at(X, 7), Y3),
    "inf-X": bad(nan_at(X, 7, np.inf), Y3),
    "-inf-X-float32": bad(nan_at(X, 0, -np.inf).astype(np.float32), Y3),
    "nan-X-fortran": bad(np.asfortranarray(nan_at(X, 299)), Y3),
    "nan-X-strided": bad(nan_at(X, 2)[:, ::2], Y3),
    "empty-X": bad(np.empty((0, 5)), np.empty(0, int)),
    "no-features": bad(np.empty((60, 0)), Y3),
    "3-d-X": bad(X.reshape(60, 5, 1), Y3),
    "1-d-X": bad(X[:, 0].copy(), Y3),
    "lengths": bad(X, Y3[:-1]),
    "0-d-y": bad(X[:1], np.array(1)),
    "continuous-y": bad(X, X[:, 0]),
    "nan-y-classifier": bad(X, nan_at(Y3, 3)),
    "3-d-y": bad(X, Y3.reshape(60, 1, 1)),
    "partial-fit-new-class": (clf(), lambda: [partial(X, Y2, classes=np.array([0, 1])),
                                              partial(X, Y3)]),
    "partial-fit-width": (clf(), lambda: [partial(X, Y3, classes=np.array([0, 1, 2])),
                                          partial(X[:, :4], Y3)]),
    "warm-start-other-classes": (clf(warm_start=True), lambda: [fit(X, Y3), fit(X, Y2)]),
    "warm-start-width": (clf(warm_start=True), lambda: [fit(X, Y3), fit(X[:, :3], Y3)]),
    "nan-y-regressor": bad(XR, nan_at(YR, 5), reg()),
    "inf-y-regressor-1d": bad(XR, nan_at(YR[:, 0], 5, np.inf), reg()),
    "nan-X-regressor": bad(nan_at(XR, 5), YR, reg()),
    "lengths-regressor": bad(XR, YR[1:], reg()),
    "partial-fit-width-regressor": (reg(), lambda: [partial(XR, YR), partial(XR[:, :2], YR)]),
    "partial-fit-outputs-regressor": (reg(), lambda: [partial(XR, YR), partial(XR, YR[:, 0])]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_scikit_learns_exact_error(case):
    make, steps = BAD[case]
    ours = run(make, steps())
    with scikit_learns_path():
        theirs = run(make, steps())
    assert ours[1] is not None
    assert ours[1:] == theirs[1:]


def test_configuration_other_than_the_default_takes_scikit_learns_path():
    """assume_finite lets NaN through scikit-learn's checks (the kernels then refuse it);
    the fast path stands aside, so that the outcome is scikit-learn's path's."""
    taken = []
    with count_fast(taken), sklearn.config_context(assume_finite=True):
        ours = run(clf(), [fit(nan_at(X, 3), Y3)])
        fine = run(clf(), [fit(X, Y3)])
    with scikit_learns_path(), sklearn.config_context(assume_finite=True):
        theirs = run(clf(), [fit(nan_at(X, 3), Y3)])
    assert taken == [False, False]
    assert ours[1:] == theirs[1:]
    assert fine[1] is None


def test_drop_ins_fit_as_scikit_learn_does():
    """The whole chain against scikit-learn's own estimator, in float64, where the two fit
    alike (tests/test_mlp_equivalence.py holds the tolerance)."""
    ours = fastmlp.MLPClassifier(hidden_layer_sizes=(7,), max_iter=20, random_state=0)
    theirs = sk.MLPClassifier(hidden_layer_sizes=(7,), max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours.fit(X, Y3)
        theirs.fit(X, Y3)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert pickle.dumps(ours._label_binarizer) == pickle.dumps(theirs._label_binarizer)
    np.testing.assert_allclose(ours.coefs_[0], theirs.coefs_[0], rtol=1e-6, atol=1e-9)


def test_classes_set_out_of_order_take_scikit_learns_path():
    """classes_ are sorted as scikit-learn leaves them; set by hand in another order, the
    binarized columns follow that order, which scikit-learn's path gives."""
    def reordered():
        model = fastmlp.MLPClassifier(max_iter=1)
        model._validate_input(X, Y3, False, True)
        model.classes_ = model._label_binarizer.classes_ = np.array([2, 0, 1])
        return model
    got = reordered()._validate_input(X, Y3, True, False)[1]
    with scikit_learns_path():
        want = reordered()._validate_input(X, Y3, True, False)[1]
    np.testing.assert_array_equal(got, want)
