"""scikit-learn's estimator checks on fastmlp's MLPClassifier and MLPRegressor.

The estimators are configured as scikit-learn's own test suite configures its MLPs
(max_iter=100). No check is marked as an expected failure: scikit-learn lists none for
its MLPs, and fastmlp's pass them all; with fastmlp's own parameters set, only the
checks that call partial_fit with class_weight='balanced', which it refuses.
"""
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from fastmlp import MLPClassifier, MLPRegressor

ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]
# fastmlp's parameters, set to other values than scikit-learn's behaviour
NON_DEFAULT = [MLPClassifier(max_iter=100, class_weight="balanced"),
               MLPClassifier(solver="rprop", max_iter=100, step_init=0.05),
               MLPRegressor(solver="rprop", max_iter=100, eta_minus=0.4),
               MLPClassifier(hidden_layer_sizes=(50, 20), activation=["tanh", "leaky_relu"],
                             max_iter=200),
               MLPRegressor(dropout=0.1, max_iter=200),
               MLPClassifier(compute_dtype="bfloat16", max_iter=100)]


SAMPLE_WEIGHT_CHECKS = ("check_sample_weight_equivalence_on_dense_data",
                        "check_sample_weight_equivalence_on_sparse_data")


def expected_failures(estimator):
    """partial_fit refuses class_weight='balanced' (as SGDClassifier does), so the
    checks that call it fail with that clear error. A row of weight 2 is not the row
    twice under dropout (the two copies drop different units) nor, to 1e-7, with
    bfloat16 products (the same numbers summed in another order, from rounded operands)."""
    if getattr(estimator, "dropout", 0) not in (0, 0.0):
        return {check: "dropout masks a repeated row's copies differently"
                for check in SAMPLE_WEIGHT_CHECKS}
    if getattr(estimator, "compute_dtype", None) is not None:
        return {check: "bfloat16 products round the sums of another order differently"
                for check in SAMPLE_WEIGHT_CHECKS}
    if getattr(estimator, "class_weight", None) != "balanced":
        return {}
    reason = "partial_fit refuses class_weight='balanced', as SGDClassifier's does"
    return {check: reason for check in ("check_fit_score_takes_y",
                                        "check_n_features_in_after_fitting",
                                        "check_estimators_partial_fit_n_features")}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(ESTIMATORS + NON_DEFAULT, expected_failed_checks=expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_keeps_the_fastmlp_class(estimator):
    copy = clone(estimator)
    assert type(copy) is type(estimator)
    assert type(copy).__module__ == "fastmlp._multilayer_perceptron"
    assert repr(copy) == f"{type(estimator).__name__}(max_iter=100)"
    assert copy.get_params() == estimator.get_params()
