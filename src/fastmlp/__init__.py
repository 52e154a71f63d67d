"""fastmlp: fast multilayer perceptrons on the CPU.

`Network` is the network of the course notes (``Network([784, 30, 10])``);
`MLPClassifier` and `MLPRegressor` are drop-in replacements for scikit-learn's.
All train in C kernels with OpenMP (see csrc/).
"""
import importlib

__version__ = "0.1.0"

# Public names and the module that defines each; imported on first use so that
# `import fastmlp` stays cheap and optional extras (matplotlib, dask) load only when asked.
_PUBLIC = {
    "Network": "network",
    "MLPClassifier": "_multilayer_perceptron",
    "MLPRegressor": "_multilayer_perceptron",
    "load": "_io",
    "datasets": None,
    "plot": None,
}
__all__ = sorted(_PUBLIC) + ["__version__"]


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
    module = importlib.import_module("." + (_PUBLIC[name] or name), __name__)
    value = module if _PUBLIC[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
