"""fastmlp: fast multilayer perceptrons on the CPU.

`Network` is the network of the course notes (``Network([784, 30, 10])``);
`MLPClassifier` and `MLPRegressor` are drop-in replacements for scikit-learn's.
All train in C kernels with OpenMP (see csrc/).
"""
import importlib

__version__ = "0.1.0"

# The kernels (and with them their OpenMP runtime) load with the package: threadpoolctl
# limits only the runtimes already loaded when its context opens, so a first fit inside
# `with threadpool_limits(1):` would otherwise run on every core.
from . import _kernels  # noqa: E402,F401

# Public names and the module that defines each; imported on first use so that
# `import fastmlp` stays cheap (scikit-learn, matplotlib and dask load only when asked).
_PUBLIC = {
    "Network": "network",
    "MLPClassifier": "_multilayer_perceptron",
    "MLPRegressor": "_multilayer_perceptron",
    "load": "_io",
    "show_config": "_config",
    "datasets": None,
    "plot": None,
}
__all__ = sorted(_PUBLIC) + ["__version__"]


def _check_forced_isa():
    """FASTMLP_ISA naming no instruction set of this CPU is said at import, not ignored."""
    import os
    import warnings

    forced = os.environ.get("FASTMLP_ISA")
    if not forced:
        return
    if _kernels.isa() != forced.lower():  # the dispatcher fell back to the best it has
        warnings.warn(
            f"FASTMLP_ISA={forced!r} is unknown or not supported by this CPU (choose from "
            f"{', '.join(_kernels.supported_isas())}); running on {_kernels.isa()!r}",
            RuntimeWarning, stacklevel=3)


_check_forced_isa()


def __getattr__(name):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'fastmlp' has no attribute {name!r}")
    module = importlib.import_module("." + (_PUBLIC[name] or name), __name__)
    value = module if _PUBLIC[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
