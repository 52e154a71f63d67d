"""fastmlp: fast multilayer perceptrons on the CPU."""
from . import _kernels

__version__ = "0.1.0"
__all__ = ["_kernels", "__version__"]
