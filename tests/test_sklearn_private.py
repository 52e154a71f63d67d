"""The private scikit-learn methods the drop-ins override or call: the table of the
signatures fastmlp expects (fastmlp._sklearn_private.SIGNATURES) holds for the installed
scikit-learn, covers every such method the code uses, and a scikit-learn whose signatures
differ gets one clear error at the start of fit, before any training."""
import ast
import inspect

import numpy as np
import pytest
import sklearn
from sklearn.neural_network import _multilayer_perceptron as sk_mlp

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, _multilayer_perceptron, _sklearn_private

SK_MODULE = "sklearn.neural_network._multilayer_perceptron"
SK_CLASSES = (sk_mlp.BaseMultilayerPerceptron, sk_mlp.MLPClassifier, sk_mlp.MLPRegressor)

rng = np.random.default_rng(0)
X = rng.normal(size=(40, 3))
y = rng.integers(0, 2, 40)


def _sklearn_method(name):
    """True when `name` is a private method of scikit-learn's MLP classes."""
    return (name.startswith("_") and not name.startswith("__")
            and any(inspect.isfunction(getattr(c, name, None)) for c in SK_CLASSES))


def test_the_installed_scikit_learn_has_the_expected_signatures():
    assert _sklearn_private.differences() == (), sklearn.__version__


def test_every_overridden_private_method_is_in_the_table():
    overridden = {name for cls in (_multilayer_perceptron._FastMLPMixin, MLPClassifier,
                                   MLPRegressor)
                  for name in vars(cls) if _sklearn_method(name)}
    assert overridden  # the scan finds the overrides
    table = {name.rsplit(".", 1)[-1] for name in _sklearn_private.SIGNATURES}
    assert overridden <= table, sorted(overridden - table)


def test_every_private_method_or_function_used_is_in_the_table():
    """Calls on self or super() of scikit-learn's private methods, and imports from its
    private MLP module, read from the source of fastmlp's drop-ins."""
    tree = ast.parse(inspect.getsource(_multilayer_perceptron))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _sklearn_method(node.attr):
            base = node.value
            if ((isinstance(base, ast.Name) and base.id == "self")
                    or (isinstance(base, ast.Call) and getattr(base.func, "id", "") == "super")):
                used.add(node.attr)
        elif isinstance(node, ast.ImportFrom) and node.module == SK_MODULE:
            used.update(alias.name for alias in node.names)
    # the scan sees what it should (_unpack and _pack are not called here any more, but
    # stay in the table: scikit-learn's _fit_lbfgs, which fastmlp runs, calls them, and
    # _engine.FlatParameters follows their packing order)
    assert {"_fit_lbfgs", "_update_no_improvement_count"} <= used
    table = {name.rsplit(".", 1)[-1] for name in _sklearn_private.SIGNATURES}
    assert used <= table, sorted(used - table)


def _fit_stochastic_of_1_6(self, X, y, activations, deltas, coef_grads, intercept_grads,
                           layer_units, incremental):
    raise AssertionError("training ran")


@pytest.mark.parametrize("estimator", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("call", ["fit", "partial_fit"])
def test_a_changed_signature_is_one_clear_error_before_training(monkeypatch, estimator,
                                                                call):
    # scikit-learn 1.6's signature, without sample_weight
    monkeypatch.setattr(sk_mlp.BaseMultilayerPerceptron, "_fit_stochastic",
                        _fit_stochastic_of_1_6)
    model = estimator(hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    kwargs = {"classes": [0, 1]} if call == "partial_fit" and estimator is MLPClassifier else {}
    with pytest.raises(RuntimeError) as info:
        getattr(model, call)(X, y, **kwargs)
    message = str(info.value)
    assert f"scikit-learn {sklearn.__version__}" in message
    assert f"fastmlp {fastmlp.__version__}" in message
    assert "BaseMultilayerPerceptron._fit_stochastic(self, X, y, sample_weight," in message
    assert str(inspect.signature(_fit_stochastic_of_1_6)) in message
    assert message.count("BaseMultilayerPerceptron.") == 2  # that entry alone
    assert not hasattr(model, "coefs_")  # nothing was trained


def test_a_missing_function_is_named(monkeypatch):
    monkeypatch.delattr(sk_mlp, "_pack")
    monkeypatch.delattr(sk_mlp.BaseMultilayerPerceptron, "_unpack")
    with pytest.raises(RuntimeError, match=r"(?s)_unpack\(self, packed_parameters\): "
                       r"scikit-learn \S+ has no such function.*_pack\(coefs_, intercepts_\)"):
        MLPClassifier(solver="lbfgs", max_iter=3).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_check_sees_a_restored_scikit_learn_again(monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(sk_mlp.BaseMultilayerPerceptron, "_unpack", lambda self, packed: None)
        assert [d[0] for d in _sklearn_private.differences()] == [
            "BaseMultilayerPerceptron._unpack"]
    assert _sklearn_private.differences() == ()
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit(X, y)
