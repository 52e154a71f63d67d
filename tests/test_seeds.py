"""The worked examples of the course notes (shared/seeds), reproduced with Network."""
import numpy as np
import pytest

from fastmlp import Network, _engine

XOR_X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])
AND_Y = np.array([0, 0, 0, 1])


def test_xor_network_with_the_notes_weights():
    # seed 000: h = relu(x W + b), y = h U + c with W = [[1,1],[1,1]], b = (0,-1),
    # U = (1,-2), c = 0.
    net = Network.from_weights([[[1, 1], [1, 1]], [[1], [-2]]], [[0, -1], [0]],
                               activation="relu", output="identity")
    assert net.n_params_ == 2 * 2 + 2 + 2 * 1 + 1
    assert net.predict(XOR_X).tolist() == [0.0, 1.0, 1.0, 0.0]


def test_shallow_relu_network_of_the_notes():
    # seed 001: y = -0.6 relu(1.5x + 3) + 1.7 relu(x - 1.2) - 1.2 relu(2x - 4) - 0.5
    net = Network.from_weights([[[1.5, 1.0, 2.0]], [[-0.6], [1.7], [-1.2]]],
                               [[3.0, -1.2, -4.0], [-0.5]], activation="relu",
                               output="identity", dtype=np.float64)
    x = np.array([-3.0, -2.0, 0.0, 1.0, 1.5, 2.0, 3.0])
    # by hand, unit by unit:
    #   x=-3: all units off                        -> -0.5
    #   x=-2: relu(0)=0                             -> -0.5
    #   x= 0: 3 only                 -0.6*3 - 0.5    -> -2.3
    #   x= 1: 4.5                    -2.7 - 0.5      -> -3.2
    #   x=1.5: 5.25, 0.3             -3.15 + 0.51 - 0.5 -> -3.14
    #   x= 2: 6, 0.8, 0              -3.6 + 1.36 - 0.5  -> -2.74
    #   x= 3: 7.5, 1.8, 2            -4.5 + 3.06 - 2.4 - 0.5 -> -4.34
    expected = [-0.5, -0.5, -2.3, -3.2, -3.14, -2.74, -4.34]
    np.testing.assert_allclose(net.predict(x[:, None]), expected, rtol=0, atol=1e-12)
    # The notes' parameter count for s inputs, n hidden units, m outputs.
    s, n, m = 1, 3, 1
    assert net.n_params_ == s * n + n + n * m + m == 10


def test_backprop_worked_example_of_the_notes():
    # seed 002: x = (0.8, 0.6), one sigmoid hidden unit d, three sigmoid outputs A, B, C,
    # every weight (and bias) zero, targets (0, 1, 0), loss sum of eps^2.
    x = np.array([[0.8, 0.6]])
    t = np.array([[0, 1, 0]])
    mu = 0.5
    net = Network([2, 1, 3], activation="logistic", output="logistic",
                  loss="squared_error", init="zeros", solver="sgd", learning_rate=mu,
                  momentum=0.0, batch_size=1, epochs=1, shuffle=False, dtype=np.float64)

    # The deltas at the zero weights. Our delta is dC/dz with C = 1/2 sum eps^2 (half the
    # notes' loss); the notes' delta is -d(sum eps^2)/ds. So delta_notes = -2 * delta_ours.
    zeros = [np.zeros((2, 1)), np.zeros((1, 3))], [np.zeros(1), np.zeros(3)]
    spec = _engine.Spec("logistic", "logistic", "squared_error")
    _, grad_W, grad_b = _engine.loss_and_grad(*zeros, spec, x, t.astype(float))
    np.testing.assert_array_equal(-2 * grad_b[1], [-1 / 4, 1 / 4, -1 / 4])
    # The hidden delta uses the weights before the update, zero here, so it is 0.
    np.testing.assert_array_equal(grad_b[0], [0.0])
    np.testing.assert_array_equal(grad_W[0], [[0.0], [0.0]])

    # One SGD step (batch 1, no momentum): the weight change is -mu * delta * u_d with
    # u_d = sgm(0) = 1/2. With our halved loss it is half the notes' -mu/8, +mu/8, -mu/8.
    net.fit(x, t)
    change = net.coefs_[1][0]
    np.testing.assert_array_equal(2 * change, [-mu / 8, mu / 8, -mu / 8])
    # ... and the hidden weights do not move in this step.
    np.testing.assert_array_equal(net.coefs_[0], [[0.0], [0.0]])

    # The notes get delta_d = 3mu/128 because they use the output weights already
    # updated (-mu/8, +mu/8, -mu/8) in the hidden rule: (sum_j w_j delta_j) sgm'(u_d).
    notes_weights = 2 * change
    notes_deltas = -2 * grad_b[1]
    assert notes_weights @ notes_deltas * (1 / 2) * (1 - 1 / 2) == pytest.approx(3 * mu / 128)


@pytest.mark.parametrize("sizes, target, learns", [
    ([2, 1], AND_Y, True),     # logistic regression separates AND ...
    ([2, 1], XOR_Y, False),    # ... but no line separates XOR (Minsky & Papert)
    ([2, 8, 1], XOR_Y, True),  # one hidden layer learns XOR
])
def test_single_layer_learns_and_not_xor_hidden_layer_learns_xor(sizes, target, learns):
    # seed 004. Full-batch Adam on the four points; the hidden layer is tanh.
    net = Network(sizes, activation="tanh", output="logistic", solver="adam",
                  learning_rate=0.05, batch_size=4, epochs=500, random_state=0,
                  dtype=np.float64)
    net.fit(XOR_X, target)
    accuracy = net.score(XOR_X, target)
    if learns:
        assert accuracy == 1.0
    else:
        assert accuracy <= 0.75  # at most three of the four points on the right side


def test_identity_activations_collapse_to_one_affine_map():
    # seed 001: with linear hidden units the network is y = x C + d with C the product of
    # the weight matrices.
    rng = np.random.default_rng(0)
    sizes = [5, 7, 6, 3]
    coefs = [rng.normal(size=(i, o)) for i, o in zip(sizes, sizes[1:])]
    intercepts = [rng.normal(size=o) for o in sizes[1:]]
    net = Network.from_weights(coefs, intercepts, activation="identity",
                               output="identity", dtype=np.float64)
    C = coefs[0] @ coefs[1] @ coefs[2]
    d = (intercepts[0] @ coefs[1] + intercepts[1]) @ coefs[2] + intercepts[2]
    X = rng.normal(size=(20, 5))
    np.testing.assert_allclose(net.predict(X), X @ C + d, rtol=1e-12, atol=1e-12)
    collapsed = Network.from_weights([C], [d], output="identity", dtype=np.float64)
    np.testing.assert_allclose(net.predict(X), collapsed.predict(X), rtol=1e-12,
                               atol=1e-12)
