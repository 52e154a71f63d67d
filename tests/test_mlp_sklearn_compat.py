"""scikit-learn's estimator checks on fastmlp's MLPClassifier and MLPRegressor.

The estimators are configured as scikit-learn's own test suite configures its MLPs
(max_iter=100). No check is marked as an expected failure: scikit-learn lists none for
its MLPs, and fastmlp's pass them all.
"""
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastmlp import MLPClassifier, MLPRegressor

ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]
# fastmlp's own parameters at values other than their defaults
NON_DEFAULT = [MLPClassifier(hidden_layer_sizes=(50, 20), activation=["tanh", "leaky_relu"],
                             max_iter=200)]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS + NON_DEFAULT)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_keeps_the_fastmlp_class(estimator):
    copy = clone(estimator)
    assert type(copy) is type(estimator)
    assert type(copy).__module__ == "fastmlp._multilayer_perceptron"
    assert repr(copy) == f"{type(estimator).__name__}(max_iter=100)"
    assert copy.get_params() == estimator.get_params()
