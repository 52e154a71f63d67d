"""Plain NumPy versions of the activations the kernels compute, for the kernel tests
(test_kernels.py, test_properties.py): the yardstick the C code is held to."""
import numpy as np


def act_ref(z, name, slope):
    """The activation `name` of z; leaky_relu's negative slope is `slope`."""
    if name == "identity":
        return z
    if name == "logistic":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z < 0, slope * z, z)
    if name == "exp":
        return np.exp(z)
    if name == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise AssertionError(name)


def dact_ref(y, name, slope):
    """The derivative of the activation written in terms of its output y (sgm')."""
    return {
        "identity": np.ones_like(y),
        "logistic": y * (1 - y),
        "tanh": 1 - y * y,
        "relu": (y != 0).astype(y.dtype),
        "leaky_relu": np.where(y > 0, 1, slope).astype(y.dtype),
        "exp": y,
    }[name]
