"""Kernel and epoch benchmarks: `pytest bench/ --benchmark-only`.

The GEMM shapes are those of each configuration of compare.py: per layer the forward
product (B x I by I x O), the weight gradient (I x B by B x O, A transposed) and the
input gradient (B x O by O x I, W transposed). Not part of the default test run.
"""
import numpy as np
import pytest

from compare import CONFIGS, ALPHA, init_weights, load_data
from fastmlp import _engine, _kernels

SHAPES = {  # (B, I, O) of each layer
    "seed": [(10, 784, 30), (10, 30, 10)],
    "mnist": [(128, 784, 256), (128, 256, 10)],
    "wide": [(256, 784, 1024), (256, 1024, 10)],
    "tabular": [(32, 20, 64), (32, 64, 64), (32, 64, 1)],
}
CASES = [(cfg, shape, product) for cfg, shapes in SHAPES.items() for shape in shapes
         for product in ("forward", "dW", "dA")]


@pytest.mark.parametrize("cfg,shape,product", CASES,
                         ids=[f"{c}-{'x'.join(map(str, s))}-{p}" for c, s, p in CASES])
def test_gemm(benchmark, cfg, shape, product):
    B, I, O = shape
    rng = np.random.default_rng(0)
    X = rng.standard_normal((B, I)).astype(np.float32)
    W = rng.standard_normal((I, O)).astype(np.float32)
    D = rng.standard_normal((B, O)).astype(np.float32)
    bias = np.zeros(O, np.float32)
    if product == "forward":
        C = np.empty((B, O), np.float32)
        benchmark(_kernels.gemm, X, W, C, bias=bias, act=_kernels.ACT_CODES["relu"])
        expected = np.maximum(X @ W, 0)
    elif product == "dW":
        C = np.empty((I, O), np.float32)
        benchmark(_kernels.gemm, X, D, C, transA=True)
        expected = X.T @ D
    else:
        C = np.empty((B, I), np.float32)
        benchmark(_kernels.gemm, D, W, C, transB=True)
        expected = D @ W.T
    np.testing.assert_allclose(C, expected, rtol=1e-3, atol=1e-3)


BF16_SHAPES = [(1024, 1024, 1024), (60000, 784, 256)]  # (M, K, N)


@pytest.mark.parametrize("shape", BF16_SHAPES, ids=["x".join(map(str, s)) for s in BF16_SHAPES])
def test_gemm_bfloat16(benchmark, shape):
    """The bfloat16 products (issue 16) on the kernels' instruction set (amx_bf16's tiles,
    avx512_bf16's vdpbf16ps, or the portable path): a square product and the forward
    product of predict's 60k rows; the rate in extra_info."""
    M, K, N = shape
    rng = np.random.default_rng(0)
    A = rng.standard_normal((M, K), dtype=np.float32)
    B = rng.standard_normal((K, N), dtype=np.float32)
    C = np.empty((M, N), np.float32)
    benchmark(_kernels.gemm, A, B, C, compute=_kernels.COMPUTE_CODES["bfloat16"])
    benchmark.extra_info["isa"] = _kernels.isa()
    benchmark.extra_info["GFLOP/s"] = round(2 * M * N * K / benchmark.stats["min"] / 1e9)
    rows = slice(0, 64)
    np.testing.assert_allclose(C[rows], A[rows] @ B, rtol=0, atol=0.05 * np.sqrt(K))


@pytest.fixture(scope="module")
def fashion():
    X, y = load_data("fashion", "float32")
    return X, np.eye(10, dtype=np.float32)[y]


def test_epoch_mnist(benchmark, fashion):
    X, Y = fashion
    cfg = CONFIGS["mnist"]
    coefs, intercepts = init_weights([784, *cfg.hidden, 10], np.float32)
    opt = _engine.SGDState(coefs + intercepts, learning_rate_init=cfg.lr, momentum=0.9)
    spec = _engine.Spec(cfg.activation, "softmax", "log_loss")
    idx = np.random.default_rng(0).permutation(len(X)).astype(np.int64)
    loss = benchmark.pedantic(_engine.train_epoch, args=(
        coefs, intercepts, spec, X, Y, None, idx, cfg.batch_size, opt, ALPHA),
        rounds=3, iterations=1)
    assert np.isfinite(loss)


def test_predict(benchmark, fashion):
    X, _ = fashion
    coefs, intercepts = init_weights([784, 256, 10], np.float32)
    spec = _engine.Spec("relu", "softmax", "log_loss")
    P = benchmark.pedantic(_engine.forward, args=(coefs, intercepts, spec, X), rounds=5,
                           iterations=1)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)


# ---- one-call prediction latency (bench/latency.py prints the same side by side) -------

@pytest.fixture(scope="module")
def latency_models():
    """A 64-100-10 MLPClassifier on the digits, fastmlp's and scikit-learn's, and the
    fastmlp model as ONNX Runtime runs it (None without onnxruntime)."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    import fastmlp
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    warnings.simplefilter("ignore", ConvergenceWarning)
    fm = fastmlp.MLPClassifier(random_state=0, max_iter=50).fit(X, y)
    sk = SkMLPClassifier(random_state=0, max_iter=50).fit(X, y)
    models = {"fastmlp": fm.predict_proba, "scikit-learn": sk.predict_proba}
    try:
        import onnxruntime as ort

        from fastmlp.onnx import to_onnx
    except ImportError:
        models["onnxruntime"] = None
    else:
        session = ort.InferenceSession(to_onnx(fm, X[:1]).SerializeToString(),
                                       providers=["CPUExecutionProvider"])
        name, proba = session.get_inputs()[0].name, session.get_outputs()[1].name
        models["onnxruntime"] = lambda A: session.run([proba], {name: A})[0]
    return np.ascontiguousarray(np.tile(X, (6, 1))[:10_000]), models


@pytest.mark.parametrize("contender", ["fastmlp", "scikit-learn", "onnxruntime"])
@pytest.mark.parametrize("rows", [1, 10, 100, 10_000])
def test_predict_proba_latency(benchmark, latency_models, rows, contender):
    X, models = latency_models
    if models[contender] is None:
        pytest.skip("onnxruntime or skl2onnx not installed (pip install 'fastmlp[onnx]')")
    A = np.ascontiguousarray(X[:rows])
    P = benchmark(models[contender], A)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-4)
