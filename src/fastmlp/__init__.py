"""fastmlp: fast multilayer perceptrons on the CPU.

`Network` is the network of the course notes (``Network([784, 30, 10])``);
`MLPClassifier` and `MLPRegressor` are drop-in replacements for scikit-learn's.
All train in C kernels with OpenMP (see csrc/).
"""
import importlib

__version__ = "0.1.0"

# Public names and the module that defines each; imported on first use so that optional
# extras (matplotlib, dask) load only when asked.
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


# How long fastmlp's OpenMP threads spin, waiting for the next parallel region, before
# they sleep: libgomp's default (300,000 spins, some tenths of a millisecond) keeps a core
# busy that another process may need, and a busy machine then slows both (measured with
# bench/contention.py: on two cores beside a busy one, default threads took up to 1.3x
# one thread's time with the default spin, within 1.05x with 20,000); sleeping at once
# (OMP_WAIT_POLICY=passive) costs the quiet machine its gains (wide: 1.3x from two
# threads instead of 1.7-1.9x). libgomp reads this when it loads, so the kernels are
# loaded here under it, and the environment is then put back as it was: other libraries'
# OpenMP runtimes (a wheel's libgomp is fastmlp's own copy) and child processes never
# see it. A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is left to rule.
SPINCOUNT = "20000"


def _load_kernels():
    import os

    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        from . import _kernels  # noqa: F401
        return
    os.environ["GOMP_SPINCOUNT"] = SPINCOUNT
    try:
        from . import _kernels  # noqa: F401
    finally:
        del os.environ["GOMP_SPINCOUNT"]


_load_kernels()


def _check_forced_isa():
    """FASTMLP_ISA naming no instruction set of this CPU is said at import, not ignored."""
    import os
    import warnings

    forced = os.environ.get("FASTMLP_ISA")
    if not forced:
        return
    from . import _kernels

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
