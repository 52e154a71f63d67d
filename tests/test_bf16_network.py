"""The bfloat16 products (issue 16), network level: compute_dtype="bfloat16" on Network
and the drop-ins. Every product of the forward pass, the deltas and the weight gradients
is the bfloat16 one (a NumPy reference that rounds the operands of all three is nearer
to the kernels than one that leaves any of them unrounded); the gradient is within
bfloat16 tolerance of float32's; training steps with those gradients; fits are
bit-identical for any thread count; the parameter lives through get_params, clone,
pickle and save/load.
"""
import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_limits

import fastmlp
from fastmlp import MLPClassifier, MLPRegressor, Network, _engine, _kernels
from test_bf16 import bf16_reference

pytestmark = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning")

X_DIGITS, Y_DIGITS = load_digits(return_X_y=True)
X_DIGITS = (X_DIGITS[:400] / 16).astype(np.float32)
Y_DIGITS = Y_DIGITS[:400]


def _problem(seed=0, n=300, sizes=(40, 64, 48, 10)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, sizes[0])).astype(np.float32)
    Y = np.eye(sizes[-1], dtype=np.float32)[rng.integers(0, sizes[-1], n)]
    coefs = [(rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
             for a, b in zip(sizes, sizes[1:])]
    intercepts = [(0.1 * rng.standard_normal(b)).astype(np.float32) for b in sizes[1:]]
    return X, Y, coefs, intercepts


def _reference_grad(X, Y, coefs, intercepts, rnd_fwd=True, rnd_delta=True, rnd_wgrad=True):
    """Loss gradient of a tanh network with a softmax output and the categorical log loss
    (float32 activations and deltas, as the kernels keep them), each family of products
    with its operands rounded to bfloat16 or not; the sums in float64."""
    def prod(a, b, rounded):
        if rounded:
            a, b = bf16_reference(a), bf16_reference(b)
        return a.astype(np.float64) @ b.astype(np.float64)

    acts = [X]
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        z = (prod(acts[-1], W, rnd_fwd) + b).astype(np.float32)
        if l < len(coefs) - 1:
            acts.append(np.tanh(z))
        else:
            e = np.exp(z - z.max(1, keepdims=True))
            acts.append((e / e.sum(1, keepdims=True)).astype(np.float32))
    delta = (acts[-1] - Y).astype(np.float32)
    gW = [None] * len(coefs)
    for l in range(len(coefs) - 1, -1, -1):
        gW[l] = prod(acts[l].T.copy(), delta, rnd_wgrad) / len(X)
        if l:
            delta = (prod(delta, coefs[l].T.copy(), rnd_delta)
                     * (1 - acts[l].astype(np.float64) ** 2)).astype(np.float32)
    return gW


def _kernel_grad(X, Y, coefs, intercepts, compute_dtype):
    spec = _engine.spec("tanh", "softmax", "categorical_log_loss",
                        compute_dtype=compute_dtype)
    return _engine.loss_and_grad(coefs, intercepts, spec, X, Y)


def _rel(a, b):
    return np.linalg.norm(np.asarray(a, np.float64) - b) / np.linalg.norm(b)


def test_every_product_of_the_gradient_is_a_bfloat16_product():
    X, Y, coefs, intercepts = _problem()
    _, gW, _ = _kernel_grad(X, Y, coefs, intercepts, "bfloat16")
    full = _reference_grad(X, Y, coefs, intercepts)
    partial = {name: _reference_grad(X, Y, coefs, intercepts, **{name: False})
               for name in ("rnd_fwd", "rnd_delta", "rnd_wgrad")}
    for l in range(len(coefs)):
        near = _rel(gW[l], full[l])
        assert near < 2e-5, (l, near)  # float32 sums (and a rare tie of the roundings)
        for name, ref in partial.items():
            if name == "rnd_delta" and l == len(coefs) - 1:
                continue  # the top layer's gradient has no delta product
            far = _rel(gW[l], ref[l])
            assert far > 100 * near, (l, name, near, far)


def test_the_bfloat16_gradient_is_within_bfloat16_tolerance_of_float32s():
    X, Y, coefs, intercepts = _problem(1)
    loss32, gW32, gb32 = _kernel_grad(X, Y, coefs, intercepts, None)
    loss16, gW16, gb16 = _kernel_grad(X, Y, coefs, intercepts, "bfloat16")
    assert abs(loss16 - loss32) < 1e-2 * abs(loss32)
    for g16, g32 in zip(gW16 + gb16, gW32 + gb32):
        assert g16.dtype == np.float32
        assert 1e-4 < _rel(g16, g32) < 3e-2  # bfloat16's 8 bits, and not float32's


@pytest.mark.parametrize("n, sizes", [(256, (40, 64, 48, 10)), (255, (41, 64, 48, 10)),
                                      (33, (1, 7, 10)), (1100, (2101, 8, 10))])
def test_training_steps_with_the_bfloat16_gradient(n, sizes):
    """One SGD step over all rows (shuffled: the first layer reads its rows where they
    lie; with AVX512_BF16, paired once for both its products, pair_batch) moves the
    weights by the learning rate times the bfloat16 gradient of loss_and_grad (which
    packs each product's operands), and not by float32's; odd widths and row counts
    leave a bfloat16 without its partner; the last case's products run over several
    blocks of K (its width, and its batch, in the weight gradient)."""
    X, Y, coefs, intercepts = _problem(2, n=n, sizes=sizes)
    out = {}
    for cd in (None, "bfloat16"):
        net = Network.from_weights(coefs, intercepts, activation="tanh", output="softmax",
                                   loss="categorical_log_loss", compute_dtype=cd,
                                   solver="sgd", learning_rate=0.5, batch_size=len(X),
                                   epochs=1, random_state=0, classes=np.arange(10))
        net.partial_fit(X, Y.argmax(1))
        out[cd] = [c.copy() for c in net.coefs_]
    _, g16, _ = _kernel_grad(X, Y, coefs, intercepts, "bfloat16")
    for l in range(len(coefs)):
        step = (coefs[l] - out["bfloat16"][l]) / 0.5
        err16 = _rel(step, g16[l])
        assert err16 < 1e-5, (l, err16)
        assert _rel((coefs[l] - out[None][l]) / 0.5, g16[l]) > 100 * err16


def test_predict_uses_bfloat16_products():
    X, Y, coefs, intercepts = _problem(3)
    net = Network.from_weights(coefs, intercepts, activation="tanh", output="softmax",
                               compute_dtype="bfloat16")
    plain = Network.from_weights(coefs, intercepts, activation="tanh", output="softmax")
    got = net.predict_proba(X)
    assert got.dtype == np.float32
    z = X
    for l, (W, b) in enumerate(zip(coefs, intercepts)):
        z = (bf16_reference(z).astype(np.float64) @ bf16_reference(W) + b).astype(np.float32)
        z = np.tanh(z) if l < len(coefs) - 1 else z
    want = np.exp(z - z.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    near = np.abs(got - want).max()
    assert near < 1e-4
    assert np.abs(plain.predict_proba(X) - want).max() > 10 * near


@pytest.mark.parametrize("make", [
    lambda: Network([64, 300, 10], solver="adam", epochs=2, batch_size=100,
                    random_state=0, compute_dtype="bfloat16"),
    lambda: MLPClassifier(hidden_layer_sizes=(300,), max_iter=2, batch_size=100,
                          random_state=0, compute_dtype="bfloat16"),
])
def test_bfloat16_fits_are_bit_identical_for_any_thread_count(make):
    """Products large enough to run in parallel (100 x 300 x 64 and up)."""
    fits = []
    for n in (1, 2, 3):
        with threadpool_limits(limits=n, user_api="openmp"):
            model = make().fit(X_DIGITS, Y_DIGITS)
            fits.append((model.coefs_, model.predict_proba(X_DIGITS)))
    for coefs, proba in fits[1:]:
        for a, b in zip(coefs, fits[0][0]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(proba, fits[0][1])


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_drop_ins_train_and_predict_in_bfloat16(cls):
    y = Y_DIGITS if cls is MLPClassifier else Y_DIGITS / 10
    X64 = X_DIGITS.astype(np.float64)
    common = dict(hidden_layer_sizes=(50,), max_iter=5, random_state=0)
    m16 = cls(compute_dtype="bfloat16", **common).fit(X64, y)
    m32 = cls(**common).fit(X_DIGITS, y)
    # float64 input converted: float32 weights; predictions in float32 too
    assert all(c.dtype == np.float32 for c in m16.coefs_ + m16.intercepts_)
    out = m16.predict_proba(X64) if cls is MLPClassifier else m16.predict(X64)
    assert out.dtype == np.float32
    # not float32's fit, but near it
    assert not np.array_equal(m16.coefs_[0], m32.coefs_[0])
    assert _rel(m16.coefs_[0], m32.coefs_[0]) < 0.05
    # the float64 input gives the float32 input's model, and the same predictions
    m16b = cls(compute_dtype="bfloat16", **common).fit(X_DIGITS, y)
    np.testing.assert_array_equal(m16b.coefs_[0], m16.coefs_[0])
    np.testing.assert_array_equal(m16.predict(X64), m16.predict(X_DIGITS))
    # the scikit-learn path of predict (a list: not the fast path) agrees
    np.testing.assert_array_equal(m16.predict(X_DIGITS[:5].tolist()), m16.predict(X_DIGITS[:5]))


@pytest.mark.parametrize("solver", ["lbfgs", "sgd"])
def test_drop_in_solvers_other_than_adam(solver):
    m = MLPRegressor(hidden_layer_sizes=(20,), solver=solver, max_iter=5, random_state=0,
                     compute_dtype="bfloat16").fit(X_DIGITS, Y_DIGITS / 10)
    assert m.coefs_[0].dtype == np.float32 and np.isfinite(m.loss_)


@pytest.mark.parametrize("make", [
    lambda cd: Network([64, 20, 10], epochs=2, random_state=0, compute_dtype=cd),
    lambda cd: MLPClassifier(hidden_layer_sizes=(20,), max_iter=2, random_state=0,
                             compute_dtype=cd),
    lambda cd: MLPRegressor(hidden_layer_sizes=(20,), max_iter=2, random_state=0,
                            compute_dtype=cd),
])
def test_compute_dtype_is_a_parameter(make, tmp_path):
    model = make("bfloat16")
    assert model.get_params()["compute_dtype"] == "bfloat16"
    assert make(None).get_params()["compute_dtype"] is None
    assert clone(model).compute_dtype == "bfloat16"
    y = Y_DIGITS if not isinstance(model, MLPRegressor) else Y_DIGITS / 10
    model.fit(X_DIGITS, y)
    pred = model.predict(X_DIGITS)
    back = pickle.loads(pickle.dumps(model))
    assert back.compute_dtype == "bfloat16"
    np.testing.assert_array_equal(back.predict(X_DIGITS), pred)
    model.save(tmp_path / "m.fastmlp")
    loaded = fastmlp.load(tmp_path / "m.fastmlp")
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X_DIGITS), pred)
    # and the parameter decides the numbers: the same model in float32 predicts otherwise
    loaded.set_params(compute_dtype=None)
    out = loaded.predict_proba if hasattr(loaded, "predict_proba") else loaded.predict
    with_bf16 = (model.predict_proba if hasattr(model, "predict_proba") else model.predict)
    assert not np.array_equal(out(X_DIGITS), with_bf16(X_DIGITS))


def test_bad_compute_dtypes_are_refused():
    with pytest.raises(ValueError, match="compute_dtype"):
        Network([64, 10], compute_dtype="float16").fit(X_DIGITS, Y_DIGITS)
    with pytest.raises(ValueError, match="compute_dtype"):
        MLPClassifier(compute_dtype="bf16").fit(X_DIGITS, Y_DIGITS)
    with pytest.raises(ValueError, match="set dtype=np.float32"):
        Network([64, 10], dtype=np.float64, compute_dtype="bfloat16").fit(X_DIGITS,
                                                                         Y_DIGITS)
    with pytest.raises(ValueError, match="unknown compute_dtype"):
        _engine.spec("relu", "softmax", "log_loss", compute_dtype="half")
    X, Y, coefs, intercepts = _problem()
    spec = _engine.spec("tanh", "softmax", "log_loss", compute_dtype="bfloat16")
    with pytest.raises(TypeError, match="bfloat16 products take float32"):
        _engine.forward([c.astype(np.float64) for c in coefs],
                        [b.astype(np.float64) for b in intercepts], spec,
                        X.astype(np.float64))
    assert _kernels.COMPUTE_CODES == {"float32": 0, "bfloat16": 1}
