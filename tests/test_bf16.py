"""The bfloat16 products (issue 16), kernel level: the rounding to bfloat16 bit for bit
against a NumPy reference written differently (nearest of the two neighbours, not the
kernels' integer add), and the bfloat16 GEMM of every instruction set against NumPy's
product of the rounded operands, within float32 tolerance, for the transposes and
epilogues the network uses.
"""
import os

import numpy as np
import pytest

from fastmlp import _kernels

BF16 = _kernels.COMPUTE_CODES["bfloat16"]
ACT = _kernels.ACT_CODES


def _isas():
    start = _kernels.isa()
    names = []
    for name in ("generic", "avx2", "avx512", "avx512_bf16", "amx_bf16"):
        try:
            _kernels.set_isa(name)
        except ValueError:
            continue
        names.append(name)
    _kernels.set_isa(start)
    return names


ISAS = _isas()


@pytest.fixture(params=ISAS)
def isa(request):
    start = _kernels.isa()
    _kernels.set_isa(request.param)
    yield request.param
    _kernels.set_isa(start)


# ---- the reference rounding -----------------------------------------------------------

def bf16_reference(x):
    """x (float32) rounded to bfloat16 as fastmlp.h specifies, as float32: of the two
    bfloat16 neighbours of |x| the nearer, on a tie the one with an even last bit; past
    the largest bfloat16 the upper neighbour is inf (2^128 for the distance); zero and
    subnormal x (below 2^-126) become zeros of x's sign; NaN keeps its sign and top
    payload, made quiet."""
    u = np.asarray(x, np.float32).ravel().view(np.uint32).astype(np.int64)
    sign, mag = u & 0x80000000, u & 0x7FFFFFFF
    lo = mag & 0xFFFF0000
    hi = lo + 0x10000

    def value(bits):
        v = np.where(bits >= 0x7F800000, 0, bits).astype(np.uint32).view(np.float32)
        return np.where(bits >= 0x7F800000, 2.0 ** 128, v.astype(np.float64))

    a = np.where(mag >= 0x7F800000, 0, mag).astype(np.uint32).view(np.float32).astype(np.float64)
    d_lo, d_hi = a - value(lo), value(hi) - a
    up = (d_hi < d_lo) | ((d_hi == d_lo) & ((lo >> 16) & 1 == 1))
    r = np.where(up, hi, lo)
    r = np.where(mag < 0x00800000, 0, r)            # subnormal input: zero
    r = np.where(mag == 0x7F800000, mag, r)         # inf
    r = np.where(mag > 0x7F800000, (mag | 0x00400000) & 0xFFFF0000, r)  # NaN, quiet
    return (sign | r).astype(np.uint32).view(np.float32).reshape(np.shape(x))


def _round(x):
    out = np.empty_like(x)
    return _kernels.round_bfloat16(x, out)


def _bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


# input bits -> expected bits, by hand
EDGES = {
    0x00000000: 0x00000000, 0x80000000: 0x80000000,   # zeros
    0x3F800000: 0x3F800000,                           # 1
    0x3F808000: 0x3F800000,   # 1 + 2^-8: a tie, the lower neighbour is even
    0x3F818000: 0x3F820000,   # a tie whose lower neighbour is odd: up
    0x3F808001: 0x3F810000, 0x3F807FFF: 0x3F800000,   # just past / short of the tie
    0xBF818000: 0xBF820000,   # the same tie, negative
    0x7F7FFFFF: 0x7F800000,   # float32's largest: past the largest bfloat16 + half: inf
    0x7F7F7FFF: 0x7F7F0000,   # just short of it: the largest bfloat16
    0x7F7F8000: 0x7F800000,   # the tie above the largest bfloat16 (odd): inf
    0xFF7FFFFF: 0xFF800000,
    0x7F800000: 0x7F800000, 0xFF800000: 0xFF800000,   # inf
    0x7FC00000: 0x7FC00000,   # quiet NaN
    0x7F800001: 0x7FC00000,   # signalling NaN, payload in the low bits: quiet
    0xFFA12345: 0xFFE10000,   # negative signalling NaN: sign and top payload kept
    0x00000001: 0x00000000, 0x80000001: 0x80000000,   # float32 subnormals: zero
    0x007F7FFF: 0x00000000,   # subnormal: zero
    0x807FFFFF: 0x80000000,   # subnormal, even where it would round up to 2^-126
    0x00800000: 0x00800000, 0x00807FFF: 0x00800000, 0x80808000: 0x80800000,
    0x00818000: 0x00820000,
}
EDGE_IN = np.array(list(EDGES), np.uint32).view(np.float32)
EDGE_OUT = np.array(list(EDGES.values()), np.uint32)


def test_the_reference_rounding_gives_the_hand_worked_edge_cases():
    np.testing.assert_array_equal(_bits(bf16_reference(EDGE_IN)), EDGE_OUT)


def test_rounding_is_bit_exact_on_the_edge_cases(isa):
    """(avx512_bf16 rounds with the AVX512_BF16 conversion instruction: this holds the
    instruction to the rules.)"""
    np.testing.assert_array_equal(_bits(_round(EDGE_IN)), EDGE_OUT)


def test_rounding_is_bit_exact_on_random_bit_patterns(isa):
    """Every class of float32 (random bits: normals of every exponent, subnormals, NaNs),
    ties made common by zeroing the low bits of some, at every offset in the vectors."""
    bits = np.random.default_rng(0).integers(0, 2 ** 32, 20001, dtype=np.uint64)
    bits[::3] &= 0xFFFF8000  # ties and exact bfloat16s
    x = bits.astype(np.uint32).view(np.float32)
    np.testing.assert_array_equal(_bits(_round(x)), _bits(bf16_reference(x)))
    y = x.copy()  # in place
    _kernels.round_bfloat16(y, y)
    np.testing.assert_array_equal(_bits(y), _bits(bf16_reference(x)))


def test_the_gemm_rounds_its_operands_exactly(isa):
    """One product per element (K = 1) against 1: C is the rounded operand, bit for bit,
    for A's and for B's operands."""
    x = EDGE_IN.reshape(-1, 1)
    n = x.shape[0]
    one = np.ones((1, 1), np.float32)
    want = (bf16_reference(EDGE_IN) + np.float32(0))  # sums start at +0: -0 + 0 = +0
    nan = np.isnan(want)
    cases = [  # A, B, transA, transB, C's shape
        (x, one, False, False, (n, 1)), (x.T.copy(), one, True, False, (n, 1)),
        (one, x.T.copy(), False, False, (1, n)), (one, x, False, True, (1, n))]
    for A, B, tA, tB, shape in cases:
        C = np.full(shape, 7, np.float32)
        _kernels.gemm(A, B, C, transA=tA, transB=tB, compute=BF16)
        got = C.ravel()
        np.testing.assert_array_equal(np.isnan(got), nan)
        np.testing.assert_array_equal(_bits(got[~nan]), _bits(want[~nan]))


# ---- the GEMM against NumPy -----------------------------------------------------------

def _reference_product(A, B, transA, transB):
    a = bf16_reference(A).astype(np.float64)
    b = bf16_reference(B).astype(np.float64)
    a, b = (a.T if transA else a), (b.T if transB else b)
    return a @ b, np.abs(a) @ np.abs(b)


def _operands(rng, M, N, K, transA, transB):
    A = rng.standard_normal((K, M) if transA else (M, K)).astype(np.float32)
    B = rng.standard_normal((N, K) if transB else (K, N)).astype(np.float32)
    return A, B


SHAPES = [(1, 1, 1), (5, 9, 3), (13, 33, 17), (50, 70, 33), (37, 45, 2100), (130, 260, 64)]


def _close(C, ref, scale):
    """Within float32 summation error: a few ulps of float32 per term of the sum."""
    K = scale.shape[0]
    err = np.abs(C.astype(np.float64) - ref)
    bound = 4e-7 * np.sqrt(K + 1) * 8 * scale + 1e-30
    assert np.all(err <= bound), f"max error {err.max()} beyond {bound[err > bound][:3]}"


@pytest.mark.parametrize("transA,transB", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("shape", SHAPES)
def test_bf16_gemm_matches_numpy_on_the_rounded_operands(isa, shape, transA, transB):
    M, N, K = shape
    rng = np.random.default_rng(M * 1000 + N + K)
    A, B = _operands(rng, M, N, K, transA, transB)
    C = np.empty((M, N), np.float32)
    _kernels.gemm(A, B, C, transA=bool(transA), transB=bool(transB), compute=BF16)
    ref, scale = _reference_product(A, B, transA, transB)
    _close(C, ref, scale)
    if K >= 17:  # and the operands were rounded: float32's product is farther off
        plain = (A.T if transA else A).astype(np.float64) @ (B.T if transB else B)
        assert np.abs(C - plain).max() > 100 * np.abs(C - ref).max()


@pytest.mark.parametrize("shape", [(13, 33, 17), (64, 40, 1500)])
def test_bf16_gemm_epilogues(isa, shape):
    """The epilogues of the layers: beta (the accumulated gradient), bias and activation
    (forward, softmax too), act' of the stored activations (the delta rule)."""
    M, N, K = shape
    rng = np.random.default_rng(7)
    A, B = _operands(rng, M, N, K, 0, 0)
    ref, scale = _reference_product(A, B, 0, 0)
    # beta = 1 onto C
    C0 = rng.standard_normal((M, N)).astype(np.float32)
    C = C0.copy()
    _kernels.gemm(A, B, C, beta=1.0, compute=BF16)
    _close(C - C0, ref, scale + 1e-6)
    # bias and activation
    bias = rng.standard_normal(N).astype(np.float32)
    for act, f in (("relu", lambda z: np.maximum(z, 0)),
                   ("logistic", lambda z: 1 / (1 + np.exp(-z))), ("tanh", np.tanh),
                   ("softmax", lambda z: np.exp(z - z.max(1, keepdims=True))
                    / np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))):
        C = np.empty((M, N), np.float32)
        _kernels.gemm(A, B, C, bias=bias, act=ACT[act], compute=BF16)
        want = f(ref + bias)
        np.testing.assert_allclose(C, want, rtol=2e-5, atol=2e-5 * (1 + scale.max()) *
                                   (np.sqrt(K) / 10), err_msg=act)
    # act' of y, transB as in the delta of the layer below (dout . W^T)
    A2, B2 = _operands(rng, M, N, K, 0, 1)
    ref2, scale2 = _reference_product(A2, B2, 0, 1)
    y = rng.uniform(0.05, 0.95, (M, N)).astype(np.float32)
    C = np.empty((M, N), np.float32)
    _kernels.gemm(A2, B2, C, transB=True, act=ACT["logistic"], dact_src=y, compute=BF16)
    _close(C, ref2 * (y * (1 - y)), scale2 * (y * (1 - y)) + 1e-6)


def test_bf16_gemm_is_the_same_for_any_thread_count(isa):
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(3)
    A, B = _operands(rng, 300, 200, 1300, 1, 0)
    out = []
    for n in (1, 2, 3):
        C = np.empty((300, 200), np.float32)
        with threadpool_limits(limits=n, user_api="openmp"):
            _kernels.gemm(A, B, C, transA=True, compute=BF16)
        out.append(C)
    for C in out[1:]:
        np.testing.assert_array_equal(C, out[0])


def test_bf16_binding_checks():
    A = np.ones((3, 4), np.float32)
    B = np.ones((4, 5), np.float32)
    C = np.empty((3, 5), np.float32)
    with pytest.raises(TypeError, match="bfloat16 products take float32"):
        _kernels.gemm(A.astype(np.float64), B.astype(np.float64), C.astype(np.float64),
                      compute=BF16)
    with pytest.raises(ValueError, match="unknown compute code"):
        _kernels.gemm(A, B, C, compute=7)
    with pytest.raises(ValueError, match="reference GEMM"):
        _kernels.gemm(A, B, C, reference=True, compute=BF16)
    with pytest.raises(ValueError, match="shapes do not agree"):
        _kernels.gemm(A, B[:3], C, compute=BF16)
    with pytest.raises(ValueError, match="expected"):
        _kernels.round_bfloat16(A, np.empty((4, 3), np.float32))
    with pytest.raises(TypeError, match="float32"):
        _kernels.round_bfloat16(A.astype(np.float64), np.empty((3, 4)))
    with pytest.raises(ValueError, match="C-contiguous"):
        _kernels.gemm(np.asfortranarray(np.ones((3, 4), np.float32)), B, C, compute=BF16)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_bf16_gemm_runs_in_a_forked_child(isa):
    """A forked child runs the products its parent ran (amx_bf16: Linux's grant of the
    tile state, asked for by the parent, holds in the child), with the same numbers."""
    rng = np.random.default_rng(5)
    A, B = _operands(rng, 50, 70, 33, 0, 0)
    C = np.empty((50, 70), np.float32)
    _kernels.gemm(A, B, C, compute=BF16)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its product's bytes down the pipe, then out
        code = 1
        try:
            D = np.empty_like(C)
            _kernels.gemm(A, B, D, compute=BF16)
            os.write(write, D.tobytes())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        got = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    np.testing.assert_array_equal(np.frombuffer(got, np.float32).reshape(C.shape), C)
