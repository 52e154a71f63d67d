"""class_weight on MLPClassifier and Network: scikit-learn's meaning (the weights of
sklearn.utils.class_weight), multiplied with sample_weight, refused as 'balanced' by
partial_fit, and it does what it is for: on imbalanced data the balanced accuracy rises."""
import warnings

import numpy as np
import pytest
import sklearn
from packaging.version import Version
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.utils.class_weight import compute_sample_weight

from fastmlp import MLPClassifier, Network

X, y = make_classification(n_samples=300, n_features=8, n_informative=5, n_classes=3,
                           random_state=0)
LABELS = np.array(["ant", "bee", "cow"])[y]
WEIGHTS = {"ant": 1.0, "bee": 4.0, "cow": 0.5}


def fit(model, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **kwargs)


def same_weights(a, b):
    for u, v in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_array_equal(u, v)


DROP_IN = dict(hidden_layer_sizes=(6,), max_iter=8, random_state=0)


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs", "rprop"])
def test_a_dict_weighs_rows_as_their_sample_weights(solver):
    rows = np.vectorize(WEIGHTS.get)(LABELS)
    by_class = fit(MLPClassifier(solver=solver, class_weight=WEIGHTS, **DROP_IN), X, LABELS)
    by_row = fit(MLPClassifier(solver=solver, **DROP_IN), X, LABELS, sample_weight=rows)
    same_weights(by_class, by_row)
    unweighted = fit(MLPClassifier(solver=solver, **DROP_IN), X, LABELS)
    assert not np.array_equal(by_class.coefs_[0], unweighted.coefs_[0])


def test_balanced_and_sample_weight_multiply():
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    from sklearn.utils.class_weight import compute_class_weight
    try:  # scikit-learn >= 1.8 counts the classes with the sample weights
        per_class = compute_class_weight("balanced", classes=np.unique(y), y=y,
                                         sample_weight=sw)
    except TypeError:
        per_class = compute_class_weight("balanced", classes=np.unique(y), y=y)
    got = fit(MLPClassifier(class_weight="balanced", **DROP_IN), X, y, sample_weight=sw)
    want = fit(MLPClassifier(**DROP_IN), X, y, sample_weight=sw * per_class[y])
    same_weights(got, want)


def test_network_classes_and_indicator_matrices():
    rows = np.vectorize(WEIGHTS.get)(LABELS).astype(np.float32)
    params = dict(sizes=[8, 6, 3], epochs=3, random_state=0)
    same_weights(fit(Network(class_weight=WEIGHTS, **params), X, LABELS),
                 fit(Network(**params), X, LABELS, sample_weight=rows))
    indicator = (np.random.default_rng(2).random((len(y), 3)) < 0.3).astype(int)
    logistic = dict(params, output="logistic")
    same_weights(
        fit(Network(class_weight="balanced", **logistic), X, indicator),
        fit(Network(**logistic), X, indicator,
            sample_weight=compute_sample_weight("balanced", indicator).astype(np.float32)))


def test_partial_fit_takes_a_dict_and_refuses_balanced():
    classes = np.unique(LABELS)
    rows = np.vectorize(WEIGHTS.get)(LABELS[:50])
    for make in (lambda **kw: MLPClassifier(**DROP_IN, **kw),
                 lambda **kw: Network([8, 6, 3], random_state=0, **kw)):
        a = make(class_weight=WEIGHTS).partial_fit(X[:50], LABELS[:50], classes=classes)
        b = make().partial_fit(X[:50], LABELS[:50], classes=classes, sample_weight=rows)
        same_weights(a, b)
        with pytest.raises(ValueError, match="'balanced' is not supported by partial_fit"):
            make(class_weight="balanced").partial_fit(X, LABELS, classes=classes)


def test_bad_class_weights_are_refused():
    with pytest.raises(ValueError, match="class_weight"):
        MLPClassifier(class_weight="even").fit(X, y)
    with pytest.raises(ValueError, match="class_weight"):
        Network([8, 3], class_weight=[1, 2, 3]).fit(X, y)
    with pytest.raises(ValueError, match="classifiers"):
        Network([8, 1], output="identity", class_weight="balanced").fit(X, y.astype(float))
    with pytest.raises(ValueError, match="not in class_weight"):
        fit(MLPClassifier(class_weight={"ant": 2, "gnu": 1}, **DROP_IN), X, LABELS)


def test_balanced_weights_raise_the_balanced_accuracy_on_imbalanced_data():
    """95% / 5%: unweighted, the network mostly answers the majority class."""
    Xi, yi = make_classification(n_samples=2000, weights=[0.95, 0.05], flip_y=0,
                                 random_state=0)
    scores = {}
    for cw in (None, "balanced"):
        model = fit(MLPClassifier(hidden_layer_sizes=(16,), max_iter=50, random_state=0,
                                  class_weight=cw), Xi[:1000], yi[:1000])
        scores[cw] = balanced_accuracy_score(yi[1000:], model.predict(Xi[1000:]))
    assert scores["balanced"] > scores[None] + 0.1, scores


@pytest.mark.xfail(
    Version(sklearn.__version__) < Version("1.9"), raises=TypeError, strict=True,
    reason="scikit-learn < 1.9: early stopping with string labels (scikit-learn issue "
           "#33760, fixed by PR #33774)")
def test_with_early_stopping_the_training_rows_are_class_weighted_not_the_validation():
    rows = np.vectorize(WEIGHTS.get)(LABELS)
    params = dict(DROP_IN, early_stopping=True, n_iter_no_change=50)
    by_class = fit(MLPClassifier(class_weight=WEIGHTS, **params), X, LABELS)
    by_row = fit(MLPClassifier(**params), X, LABELS, sample_weight=rows)
    plain = fit(MLPClassifier(**params), X, LABELS)
    assert by_class.loss_curve_ == by_row.loss_curve_  # the same training rows' weights
    assert by_class.loss_curve_ != plain.loss_curve_
    # the validation score is the plain accuracy, not the class-weighted one
    assert by_class.validation_scores_ != by_row.validation_scores_
