"""The private parts of scikit-learn's MLP code that the drop-ins rely on, and the check
that the installed scikit-learn still has them as fastmlp expects.

`MLPClassifier` and `MLPRegressor` subclass scikit-learn's estimators and replace some
of their private methods, which scikit-learn's `_fit` calls with positional arguments;
they also call a few private methods themselves. A scikit-learn release that changes one
of these signatures would otherwise break fits with a TypeError in the middle of `fit`.
`check()` runs at the start of every fit and partial_fit and turns such a change into one
error that names every difference, before any training. `tests/test_sklearn_private.py`
holds the table below against the installed scikit-learn and against the code.
"""
import functools
import inspect

from sklearn.neural_network import _multilayer_perceptron as _sk_mlp

# Name in sklearn.neural_network._multilayer_perceptron: the signature fastmlp is written
# against (the same in scikit-learn 1.7, 1.8 and 1.9; 1.6 lacks sample_weight).
SIGNATURES = {
    # overridden by the drop-ins, called by scikit-learn
    "BaseMultilayerPerceptron._fit_stochastic":
        "(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads, "
        "layer_units, incremental)",
    "BaseMultilayerPerceptron._fit_lbfgs":
        "(self, X, y, sample_weight, activations, deltas, coef_grads, intercept_grads, "
        "layer_units)",
    "BaseMultilayerPerceptron._loss_grad_lbfgs":
        "(self, packed_coef_inter, X, y, sample_weight, activations, deltas, coef_grads, "
        "intercept_grads)",
    "BaseMultilayerPerceptron._forward_pass_fast": "(self, X, check_input=True)",
    # validates X and y at fit (compute_dtype="bfloat16" then takes float32)
    "MLPClassifier._validate_input": "(self, X, y, incremental, reset)",
    "MLPRegressor._validate_input": "(self, X, y, incremental, reset)",
    # scikit-learn's training entry, which calls the overrides (and runs the check)
    "BaseMultilayerPerceptron._fit": "(self, X, y, sample_weight=None, incremental=False)",
    # sets the state the training loops update (t_, loss_curve_, _best_coefs, ...)
    "BaseMultilayerPerceptron._initialize": "(self, y, layer_units, dtype)",
    # draws one layer's initial weights (by the Glorot rule of self.activation)
    "BaseMultilayerPerceptron._init_coef": "(self, fan_in, fan_out, dtype)",
    # called by the drop-ins
    "BaseMultilayerPerceptron._update_no_improvement_count":
        "(self, early_stopping, X, y, sample_weight)",
    "BaseMultilayerPerceptron._unpack": "(self, packed_parameters)",
    "_pack": "(coefs_, intercepts_)",
}


def _lookup(name):
    """The object `name` designates in scikit-learn's MLP module, None if there is none."""
    obj = _sk_mlp
    for part in name.split("."):
        obj = getattr(obj, part, None)
    return obj


def differences():
    """(name, expected signature, installed signature or None where missing) for every
    entry of SIGNATURES that the installed scikit-learn has differently."""
    return _differences(tuple(_lookup(name) for name in SIGNATURES))


@functools.lru_cache(maxsize=8)  # keyed by the functions: a replaced one is examined anew
def _differences(functions):
    found = [None if f is None else str(inspect.signature(f)) for f in functions]
    return tuple((name, expected, installed)
                 for (name, expected), installed in zip(SIGNATURES.items(), found)
                 if installed != expected)


def check():
    """Raise RuntimeError, naming every difference, if the installed scikit-learn's private
    MLP methods are not those fastmlp was written against."""
    diffs = differences()
    if not diffs:
        return
    import sklearn

    from . import __version__

    lines = "\n".join(f"  {name}{expected}: scikit-learn {sklearn.__version__} has "
                      + (f"{name}{installed}" if installed else "no such function")
                      for name, expected, installed in diffs)
    raise RuntimeError(
        f"fastmlp {__version__} cannot train with scikit-learn {sklearn.__version__}: its "
        f"MLPClassifier and MLPRegressor replace private methods of scikit-learn's, and "
        f"these differ from what fastmlp expects:\n{lines}\n"
        f"Install a scikit-learn that this fastmlp supports (1.7 to 1.9), or a fastmlp "
        f"release that supports this scikit-learn. fastmlp.Network does not use them.")
