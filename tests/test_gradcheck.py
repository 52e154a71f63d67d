"""Backpropagation in the kernels against central finite differences of the loss, in
float64, for every hidden activation x output unit x loss of the kernels' tables and two
depths."""
import itertools

import numpy as np
import pytest

from fastmlp import _engine, _kernels

# Every entry of the kernels' tables (derived from the C enums): an activation, output
# unit or loss added there is checked here too.
ACTIVATIONS = list(_kernels.HIDDEN_ACT_CODES)
OUTPUTS = [name for name in _engine.OUTPUT_ACTIVATIONS if name not in _engine.ALIASES]
LOSSES = list(_kernels.LOSS_CODES)
DEPTHS = {1: [3, 5, 3], 2: [3, 5, 4, 3]}
# Output biases that put every output where each loss is defined and smooth: in (0, 1)
# for the cross-entropies, > 0 for poisson (identity: 0.5 + small; exp: e^-1 + small).
OUTPUT_BIAS = {"identity": 0.5, "logistic": 0.0, "softmax": 0.0, "exp": -1.0}
STEP = 1e-6
TOLERANCE = 1e-6

CASES = list(itertools.product(ACTIVATIONS, OUTPUTS, LOSSES, DEPTHS))


def make_problem(activation, output, loss, depth, seed):
    rng = np.random.default_rng(seed)
    sizes = DEPTHS[depth]
    coefs = [rng.normal(0.0, 0.5, (n_in, n_out)) for n_in, n_out in zip(sizes, sizes[1:])]
    intercepts = [rng.normal(0.0, 0.5, n_out) for n_out in sizes[1:]]
    intercepts[-1][:] = 0.0
    X = rng.normal(size=(7, sizes[0]))
    # Scale the last layer so that the output units' inputs stay within 0.3 of their bias.
    Z = _engine.forward(coefs, intercepts, _engine.Spec(activation, "identity", slope=0.1), X)
    coefs[-1] *= 0.3 / np.abs(Z).max()
    intercepts[-1][:] = OUTPUT_BIAS[output]
    n_out = sizes[-1]
    if loss == "absolute_error":
        # |y - a| has a kink at a == y: keep every target 0.2 to 0.5 away from its output.
        spec = _engine.Spec(activation, output, loss, slope=0.1)
        A = _engine.forward(coefs, intercepts, spec, X)
        Y = A + rng.choice([-1, 1], A.shape) * rng.uniform(0.2, 0.5, A.shape)
    elif loss == "categorical_log_loss":
        Y = rng.dirichlet(np.ones(n_out), size=len(X))  # rows of probabilities
    elif loss == "poisson":
        Y = rng.uniform(0.0, 2.0, (len(X), n_out))
    elif loss == "binary_log_loss":
        Y = rng.uniform(0.0, 1.0, (len(X), n_out))
    else:
        Y = rng.normal(size=(len(X), n_out))
    # The deeper networks also check sample weights and the L2 penalty.
    sample_weight = rng.uniform(0.5, 2.0, len(X)) if depth == 2 else None
    alpha = 0.01 if depth == 2 else 0.0
    return coefs, intercepts, X, np.ascontiguousarray(Y), sample_weight, alpha


@pytest.mark.parametrize("activation, output, loss, depth", CASES)
def test_gradient_matches_central_differences(activation, output, loss, depth):
    seed = CASES.index((activation, output, loss, depth))
    coefs, intercepts, X, Y, sw, alpha = make_problem(activation, output, loss, depth, seed)
    spec = _engine.Spec(activation, output, loss, slope=0.1)

    def loss_at():
        return _engine.loss_and_grad(coefs, intercepts, spec, X, Y, sw, alpha)[0]

    _, grad_W, grad_b = _engine.loss_and_grad(coefs, intercepts, spec, X, Y, sw, alpha)
    analytic, numeric = [], []
    for param, grad in zip(coefs + intercepts, grad_W + grad_b):
        flat = param.reshape(-1)
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + STEP
            up = loss_at()
            flat[i] = saved - STEP
            down = loss_at()
            flat[i] = saved
            numeric.append((up - down) / (2 * STEP))
        analytic.extend(grad.reshape(-1))
    analytic, numeric = np.array(analytic), np.array(numeric)
    assert np.linalg.norm(numeric) > 1e-3  # a real gradient, not two zeros that agree
    error = np.linalg.norm(analytic - numeric) / (np.linalg.norm(analytic)
                                                  + np.linalg.norm(numeric))
    assert error <= TOLERANCE, f"relative error {error:.2e}"
