"""The bridge between the estimators and the C kernels.

Name tables (a name maps to a kernel code; the codes come from the C enums, see
ARCHITECTURE.md), array preparation and weight checks shared by every estimator, the
optimiser states, and the three whole-network passes: one training epoch, the full-batch
loss and gradient, and the forward pass.
Both `Network` and the scikit-learn drop-ins train through here; neither calls
`_kernels` directly.
"""
from __future__ import annotations


import functools
from numbers import Real
import signal
import threading
import weakref

import numpy as np
import scipy.sparse as sp
from sklearn.utils._param_validation import Interval

from . import _kernels


# ---- name tables ---------------------------------------------------------------------
# Every name maps to a kernel code; the codes and their names come from the C enums
# (_kernels.ACT_CODES, LOSS_CODES, SOLVER_CODES). Adding an activation or a loss is its
# formulas in csrc/, its enum entry in fastmlp.h and, for an alias, a row here.

# The course notes' names for what scikit-learn names otherwise: alias -> name.
ALIASES = {
    "linear": "identity",
    "sigmoid": "logistic",
    "quadratic": "squared_error",
    "mse": "squared_error",
    "mae": "absolute_error",
    "binary_cross_entropy": "binary_log_loss",
    "categorical_cross_entropy": "categorical_log_loss",
    "cross_entropy": "categorical_log_loss",
}


def _with_aliases(codes):
    return {**codes, **{alias: codes[name] for alias, name in ALIASES.items() if name in codes}}


# The units of a hidden layer: the enum's first activations (fastmlp.h).
HIDDEN_ACTIVATIONS = _with_aliases(_kernels.HIDDEN_ACT_CODES)
# The output units the notes teach.
OUTPUT_ACTIVATIONS = _with_aliases({name: _kernels.ACT_CODES[name] for name in
                                    ("identity", "logistic", "softmax", "exp")})
# Losses. "log_loss" is resolved by the output unit (see resolve_loss).
LOSSES = _with_aliases(_kernels.LOSS_CODES)
SOLVERS = dict(_kernels.SOLVER_CODES)
# scikit-learn's learning-rate schedules of SGD (fm_train_epochs applies them).
SCHEDULES = dict(_kernels.SCHEDULE_CODES)
# What the matrix products compute in (the estimators' compute_dtype): None, the network's
# own dtype; "bfloat16", operands rounded to bfloat16 and float32 sums (float32 networks
# only). See fm_compute in fastmlp.h.
COMPUTE_DTYPES = {None: _kernels.COMPUTE_CODES["float32"],
                  "bfloat16": _kernels.COMPUTE_CODES["bfloat16"]}

STATUS_NONFINITE = _kernels.STATUS_NONFINITE
STATUS_OK, STATUS_STOPPED = _kernels.STATUS_OK, _kernels.STATUS_STOPPED
STATUS_NOMEM, STATUS_ZERO_WEIGHT = _kernels.STATUS_NOMEM, _kernels.STATUS_ZERO_WEIGHT


def lookup(table, name, what):
    """table[name], or a ValueError that lists the valid names."""
    try:
        return table[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown {what} {name!r}; expected one of {sorted(table, key=str)}"
        ) from None


def resolve_loss(loss, out_activation):
    """The kernel loss code: 'log_loss' means binary cross-entropy after logistic units
    and categorical cross-entropy after softmax, as in scikit-learn."""
    if loss == "log_loss":
        loss = "categorical_log_loss" if out_activation == "softmax" else "binary_log_loss"
    return lookup(LOSSES, loss, "loss")


def spec(hidden, out, loss="squared_error", slope=0.01, compute_dtype=None):
    """Spec(hidden, out, loss, slope, compute_dtype), made once per combination (a Spec
    is never changed); names that cannot be hashed get theirs made, and refused, by
    Spec."""
    if isinstance(hidden, list):
        hidden = tuple(hidden)
    try:
        return _spec(hidden, out, loss, slope, compute_dtype)
    except TypeError:
        return Spec(hidden, out, loss, slope, compute_dtype)


_spec = functools.lru_cache(maxsize=256)(lambda *args: Spec(*args))


def hidden_codes(hidden):
    """The kernel code of a hidden activation name, or for a list (or tuple) of names,
    one per hidden layer, the tuple of their codes (one code when they are all one)."""
    if isinstance(hidden, (list, tuple)):
        if len(hidden) == 0:
            raise ValueError("activation: an empty list; give one name per hidden layer")
        codes = tuple(lookup(HIDDEN_ACTIVATIONS, name, "activation") for name in hidden)
        return codes[0] if len(set(codes)) == 1 else codes
    return lookup(HIDDEN_ACTIVATIONS, hidden, "activation")


def dropout_rates(dropout, n_hidden):
    """dropout (a rate, or a list of one per hidden layer, each in [0, 1)) as the kernels
    take it: None when nothing is dropped, else a tuple of n_hidden rates; or a
    ValueError that says what is wrong."""
    rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * n_hidden
    if len(rates) != n_hidden:
        raise ValueError(f"dropout lists {len(rates)} rates, but the network has "
                         f"{n_hidden} hidden layers: give one per hidden layer")
    for rate in rates:
        if isinstance(rate, bool) or not isinstance(rate, Real) or not 0 <= rate < 1:
            raise ValueError(f"dropout rates must be numbers in [0, 1); got {rate!r}")
    return tuple(float(r) for r in rates) if any(rates) else None


def check_activations(activation, n_hidden):
    """A ValueError unless activation is a name, or a list of names with one per hidden
    layer (n_hidden of them)."""
    hidden_codes(activation)
    if isinstance(activation, (list, tuple)) and len(activation) != n_hidden:
        raise ValueError(f"activation lists {len(activation)} activations, but the network "
                         f"has {n_hidden} hidden layers: give one per hidden layer")


class Spec:
    """What the kernels need to know about a network besides its arrays. hidden is one
    activation code, or a tuple of one per hidden layer."""

    __slots__ = ("hidden", "out", "loss", "slope", "compute")

    def __init__(self, hidden, out, loss="squared_error", slope=0.01, compute_dtype=None):
        self.hidden = hidden_codes(hidden)
        self.out = lookup(OUTPUT_ACTIVATIONS, out, "output activation")
        self.loss = resolve_loss(loss, out)
        self.slope = float(slope)
        self.compute = lookup(COMPUTE_DTYPES, compute_dtype, "compute_dtype")


# ---- arrays --------------------------------------------------------------------------

def kernel_X(X, dtype):
    """X as the kernels take it: a C-contiguous dense array of dtype, or for a scipy
    sparse matrix a (data, indices, indptr, shape) CSR tuple with int64 indices.
    Nothing is copied that need not be: the kernels only read X, so a read-only memmap
    of the right dtype and layout is used in place."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=dtype)
        if X.nnz and (X.indices.min() < 0 or X.indices.max() >= X.shape[1]):
            raise ValueError("the sparse matrix has column indices outside "
                             f"[0, {X.shape[1]}): it is corrupt")
        if not X.has_canonical_format:  # summing duplicates in place would edit the caller's matrix
            X = X.copy()
            X.sum_duplicates()
        return (
            np.ascontiguousarray(X.data, dtype=dtype),
            np.ascontiguousarray(X.indices, dtype=np.int64),
            np.ascontiguousarray(X.indptr, dtype=np.int64),
            X.shape,
        )
    return np.require(X, dtype, ["C", "A"])


def n_rows(X):
    return X[3][0] if isinstance(X, tuple) else X.shape[0]


# ---- parameter arrays ----------------------------------------------------------------
# The threads of a training epoch split each weight matrix, and its optimiser moments,
# by columns at multiples of 32 floats (128 bytes). On arrays that start on a 64-byte
# cache line the two halves of a row share no line; on arrays that start elsewhere
# (NumPy promises 16 bytes) each row's boundary line bounces between the cores, and
# every vector load and store of the step spans two lines.
CACHE_LINE = 64


def aligned_empty(shape, dtype):
    """An uninitialised C-contiguous array whose data starts on a cache line."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    buf = np.empty(nbytes + CACHE_LINE, dtype=np.uint8)
    start = -buf.ctypes.data % CACHE_LINE
    return buf[start:start + nbytes].view(dtype).reshape(shape)


def aligned_zeros_like(a):
    out = aligned_empty(a.shape, a.dtype)
    out[...] = 0
    return out


def aligned(a):
    """a itself when it is C-contiguous and starts on a cache line, else such a copy."""
    if a.flags.c_contiguous and a.flags.writeable and a.ctypes.data % CACHE_LINE == 0:
        return a
    out = aligned_empty(a.shape, a.dtype)
    out[...] = a
    return out


def check_weights(coefs, intercepts, dtype, widths=None):
    """coefs and intercepts as lists of C-contiguous writeable arrays of dtype (copies
    only where needed), or a ValueError when they do not chain into a network, do not
    have the layer widths `widths` (input first) when given, or hold NaN or inf."""
    if len(coefs) == 0 or len(coefs) != len(intercepts):
        raise ValueError(f"a network needs one intercept vector per weight matrix, at least "
                         f"one; got {len(coefs)} coefs and {len(intercepts)} intercepts")
    coefs = [np.require(c, dtype, ["C", "A", "W"]) for c in coefs]
    intercepts = [np.require(b, dtype, ["C", "A", "W"]) for b in intercepts]
    for layer, (W, b) in enumerate(zip(coefs, intercepts)):
        if W.ndim != 2 or b.shape != (W.shape[1],) or 0 in W.shape:
            raise ValueError(f"layer {layer}: coefs must be (n_in, n_out) and intercepts "
                             f"(n_out,); got {W.shape} and {b.shape}")
        if layer and W.shape[0] != coefs[layer - 1].shape[1]:
            raise ValueError(f"layer {layer} takes {W.shape[0]} inputs but layer "
                             f"{layer - 1} has {coefs[layer - 1].shape[1]} outputs: the "
                             f"weights do not chain")
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ValueError(f"layer {layer}: the weights contain NaN or inf")
    if widths is not None:
        have = [coefs[0].shape[0]] + [W.shape[1] for W in coefs]
        if have != list(widths):
            raise ValueError(f"coefs_ and intercepts_ have the layer widths {have}, but the "
                             f"model's are {list(widths)} (input, hidden layers, output); "
                             f"fit it afresh to change its shape")
    return coefs, intercepts


def trainable_weights(coefs, intercepts, dtype, widths):
    """The arrays training updates in place: check_weights' arrays (of the layer widths
    `widths`), each on a cache line (see aligned; copied once where it is not)."""
    coefs, intercepts = check_weights(coefs, intercepts, dtype, widths)
    return [aligned(c) for c in coefs], [aligned(b) for b in intercepts]


# ---- optimisers ----------------------------------------------------------------------

class OptimizerState:
    """What every optimiser keeps between epochs: its moments m (and v), one per
    parameter array in the order coefs + intercepts and each on a cache line, the step
    count t, and the learning rate; an epoch that fails puts them back (state/restore)."""

    solver = None  # the kernels' code (SOLVERS)

    def __init__(self, params, learning_rate_init, second_moments):
        self.learning_rate_init = learning_rate_init
        self.learning_rate = float(learning_rate_init)
        self.t = 0
        self.m = [aligned_zeros_like(p) for p in params]
        self.v = [aligned_zeros_like(p) for p in params] if second_moments else []

    def iteration_ends(self, time_step):
        """Called after each epoch with the number of samples seen (scikit-learn's t_)."""

    def schedule_args(self):
        """The learning-rate schedule, as fm_run's fields (schedule, lr_init, power_t)."""
        raise NotImplementedError

    def trigger_stopping(self, msg, verbose):
        """No improvement for n_iter_no_change epochs: True to stop, as scikit-learn."""
        if verbose:
            print(msg + " Stopping.")
        return True

    def fits(self, params):
        """True when the state has one moment per parameter array, of its shape and dtype
        (a model whose weights were replaced by others of another shape has not)."""
        return all(
            len(moments) == len(params)
            and all(a.shape == p.shape and a.dtype == p.dtype for a, p in zip(moments, params))
            for moments in ([self.m, self.v] if self.v else [self.m]))

    def state(self):
        return [a.copy() for a in self.m], [a.copy() for a in self.v], self.t

    def restore(self, state):
        for dst, src in zip(self.m, state[0]):
            dst[...] = src
        for dst, src in zip(self.v, state[1]):
            dst[...] = src
        self.t = state[2]


class SGDState(OptimizerState):
    """Mini-batch SGD with (Nesterov) momentum and scikit-learn's learning-rate
    schedules; m holds the velocities."""

    solver = SOLVERS["sgd"]

    def __init__(self, params, learning_rate_init=0.1, lr_schedule="constant",
                 momentum=0.9, nesterov=True, power_t=0.5):
        super().__init__(params, learning_rate_init, second_moments=False)
        self.lr_schedule = lr_schedule
        self.momentum = momentum
        self.nesterov = nesterov
        self.power_t = power_t

    def iteration_ends(self, time_step):
        if self.lr_schedule == "invscaling":
            self.learning_rate = (
                float(self.learning_rate_init) / (time_step + 1) ** self.power_t
            )

    def trigger_stopping(self, msg, verbose):
        if self.lr_schedule != "adaptive":
            return super().trigger_stopping(msg, verbose)
        if self.learning_rate <= 1e-6:
            if verbose:
                print(msg + " Learning rate too small. Stopping.")
            return True
        self.learning_rate /= 5.0
        if verbose:
            print(msg + " Setting learning rate to %f" % self.learning_rate)
        return False

    def kernel_args(self):
        return dict(solver=self.solver, lr=self.learning_rate, momentum=self.momentum,
                    nesterov=bool(self.nesterov), beta1=0.0, beta2=0.0, eps=0.0)

    def schedule_args(self):
        return dict(schedule=SCHEDULES[self.lr_schedule],
                    lr_init=float(self.learning_rate_init), power_t=float(self.power_t))


class AdamState(OptimizerState):
    """Adam (Kingma and Ba), as scikit-learn's AdamOptimizer; m and v are its moments."""

    solver = SOLVERS["adam"]

    def __init__(self, params, learning_rate_init=0.001, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
        super().__init__(params, learning_rate_init, second_moments=True)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def kernel_args(self):
        return dict(solver=self.solver, lr=self.learning_rate_init, momentum=0.0,
                    nesterov=False, beta1=self.beta_1, beta2=self.beta_2, eps=self.epsilon)

    def schedule_args(self):
        return dict(schedule=SCHEDULES["constant"], lr_init=float(self.learning_rate_init),
                    power_t=0.0)


# The optimiser of each solver name: OPTIMIZERS[solver](params, learning_rate_init, ...).
OPTIMIZERS = {"sgd": SGDState, "adam": AdamState}


class IRpropMinus:
    """iRprop- (Igel and Huesken 2000, "Improving the Rprop learning algorithm"): a full-
    batch optimiser with one step size per weight, over a flat parameter vector.

    Where a weight's gradient keeps its sign, its step grows by eta_plus (up to step_max);
    where the sign changes, the step shrinks by eta_minus (down to step_min) and the
    gradient is taken as zero, so that the weight rests this iteration and its step is
    not changed at the next one; the weight then moves by -sign(gradient) * step. The
    "minus" variant never takes a step back. Each iteration is O(P) vector work beside
    the O(nP) loss and gradient."""

    def __init__(self, n_params, dtype, step_init=0.1, eta_plus=1.2, eta_minus=0.5,
                 step_min=1e-6, step_max=50.0):
        if not step_min <= step_init <= step_max:
            raise ValueError(
                f"solver='rprop' needs step_min <= step_init <= step_max; got "
                f"step_min={step_min}, step_init={step_init}, step_max={step_max}")
        self.step = np.full(n_params, step_init, dtype=dtype)
        self.previous = np.zeros(n_params, dtype=dtype)  # last gradient (0 after a change)
        self.eta_plus, self.eta_minus = eta_plus, eta_minus
        self.step_min, self.step_max = step_min, step_max

    def fits(self, n_params, dtype):
        return self.step.shape == (n_params,) and self.step.dtype == dtype

    def update(self, params, grad):
        """One iteration: params (flat) stepped in place by grad (flat; zeroed in place
        where its sign changed)."""
        sign = np.sign(grad) * np.sign(self.previous)  # a product of two tiny
        step = self.step                                # gradients could round to 0
        grow, shrink = sign > 0, sign < 0
        step[grow] = np.minimum(step[grow] * self.eta_plus, self.step_max)
        step[shrink] = np.maximum(step[shrink] * self.eta_minus, self.step_min)
        grad[shrink] = 0
        params -= np.sign(grad) * step
        self.previous[...] = grad

    def trigger_stopping(self, msg, verbose):
        """No improvement for n_iter_no_change iterations: stop (as scikit-learn's Adam)."""
        if verbose:
            print(msg + " Stopping.")
        return True


# The full-batch optimisers that run in Python over the kernels' loss and gradient.
FULL_BATCH_OPTIMIZERS = {"rprop": IRpropMinus}

# IRpropMinus's parameters as the estimators validate them (0 < eta_minus < 1 < eta_plus;
# IRpropMinus checks step_min <= step_init <= step_max when training starts).
RPROP_CONSTRAINTS = {
    "step_init": [Interval(Real, 0, None, closed="neither")],
    "eta_plus": [Interval(Real, 1, None, closed="neither")],
    "eta_minus": [Interval(Real, 0, 1, closed="neither")],
    "step_min": [Interval(Real, 0, None, closed="left")],
    "step_max": [Interval(Real, 0, None, closed="neither")],
}


# ---- passes --------------------------------------------------------------------------

# Each fitted model's Predictor, made at its first prediction on clean input and again
# when its weight arrays or spec change (a weak reference: it goes with the model, and
# is never pickled or cloned with it).
_PREDICTORS = weakref.WeakKeyDictionary()


def predictor(owner, coefs, intercepts, spec, make=True):
    """The _kernels.Predictor of owner's weights coefs and intercepts (C-contiguous, of
    one float dtype, used as they are) under spec: the one made before for these very
    arrays, else a new one (or None when not make)."""
    made = _PREDICTORS.get(owner)
    if made is None or made[1] is not spec or not made[0].made_for(coefs, intercepts):
        if not make:
            return None
        made = (_kernels.Predictor(coefs, intercepts, spec.hidden, spec.out, spec.slope,
                                   spec.compute), spec)
        _PREDICTORS[owner] = made
    return made[0]


def forward(coefs, intercepts, spec, X):
    """The network's output on X (prepared by kernel_X), shape (n, n_outputs)."""
    dtype = coefs[0].dtype
    out = np.empty((n_rows(X), coefs[-1].shape[1]), dtype=dtype)
    if out.shape[0] == 0:
        return out
    return _kernels.forward_net(coefs, intercepts, spec.hidden, spec.out, spec.slope, X, out,
                                spec.compute)


def loss_and_grad(coefs, intercepts, spec, X, Y, sample_weight=None, alpha=0.0,
                  loss_scale=1.0, out=None):
    """Loss of all rows and its gradient: (loss, coef_grads, intercept_grads), the
    gradients written into out = (coef_grads, intercept_grads) when given."""
    gW, gb = out if out is not None else ([np.empty_like(c) for c in coefs],
                                          [np.empty_like(b) for b in intercepts])
    loss = _kernels.loss_and_grad(coefs, intercepts, spec.hidden, spec.out, spec.loss,
                                  spec.slope, X, Y, sample_weight, alpha, loss_scale, gW, gb,
                                  spec.compute)
    return loss, gW, gb


class FlatParameters:
    """The weights (or their gradients) of a network in one flat array, in scikit-learn's
    packing order for L-BFGS (every coefs_ raveled, then every intercepts_), with a
    C-contiguous view of each layer's array: `coefs`, `intercepts`. An optimiser's vector
    is copied in with one call, and a gradient filled through the views comes out packed."""

    def __init__(self, widths, dtype):
        shapes = [(i, o) for i, o in zip(widths[:-1], widths[1:])] + [(o,) for o in widths[1:]]
        sizes = [int(np.prod(shape)) for shape in shapes]
        self.flat = np.empty(sum(sizes), dtype=dtype)
        ends = np.cumsum(sizes)
        views = [self.flat[end - size:end].reshape(shape)
                 for shape, size, end in zip(shapes, sizes, ends)]
        self.coefs, self.intercepts = views[:len(widths) - 1], views[len(widths) - 1:]


class Diverged(ArithmeticError):
    """Training produced a non-finite loss or weights; the parameters were restored."""


def full_batch_iteration(optimizer, params, grads, spec, X, Y, sample_weight=None,
                         alpha=0.0, loss_scale=1.0):
    """One iteration of a full-batch optimiser (FULL_BATCH_OPTIMIZERS): the kernels' loss
    and gradient at params (FlatParameters; the gradient goes to the FlatParameters
    grads), then the optimiser's step of params in place. Returns the loss before the
    step. When the loss or the gradient is not finite, params are left as they were and
    Diverged is raised."""
    loss, _, _ = loss_and_grad(params.coefs, params.intercepts, spec, X, Y, sample_weight,
                               alpha, loss_scale, out=(grads.coefs, grads.intercepts))
    if not (np.isfinite(loss) and np.isfinite(grads.flat).all()):
        raise Diverged("the loss or its gradient is not finite; the weights of the last "
                       "finite iteration were kept. Lower step_max or scale the input.")
    optimizer.update(params.flat, grads.flat)
    return float(loss)


def train_epoch(coefs, intercepts, spec, X, Y, sample_weight, idx, batch_size, optimizer,
                alpha=0.0, loss_scale=1.0):
    """One epoch in the C kernels (rows in the order idx, or in order when None), all or
    nothing: returns the mean batch loss over the epoch's rows (a mini-batch whose sample
    weights sum to zero has no gradient and is skipped, its rows left out of the mean).
    If the loss or a weight turns non-finite, or the epoch is interrupted
    (KeyboardInterrupt) or runs out of memory, the parameters and the optimiser state are
    put back as they were before the epoch and Diverged (or the exception) is raised. The
    optimiser's learning rate is left as it is (no schedule: train_epochs with one epoch)."""
    run = dict(optimizer.schedule_args(), schedule=SCHEDULES["constant"], t=0,
               check_loss=False, tol=0.0, n_iter_no_change=0, best_loss=np.inf,
               no_improvement=0)
    orders = None if idx is None else np.asarray(idx).reshape(1, -1)
    result = train_epochs(coefs, intercepts, spec, X, Y, sample_weight, orders, 1,
                          batch_size, optimizer, run, alpha, loss_scale)
    if result.error is not None:
        raise result.error
    return result.losses[0]


# ---- several epochs per call -----------------------------------------------------------
# A small fit runs hundreds of epochs of a few batches each; a call into the kernels per
# epoch would cost more than the epoch's arithmetic. So the stochastic solvers hand the
# kernels blocks of epochs, with each epoch's row order drawn ahead, and the kernels
# apply scikit-learn's schedule and stopping rule between them (fm_run in fastmlp.h).

# Products per block: blocks stay short enough that a failure late in one (which replays
# the block's good epochs) and the row orders drawn ahead stay cheap.
BLOCK_PRODUCTS = 2 ** 28
BLOCK_ROWS = 2 ** 22


def epochs_per_call(n_rows, coefs):
    """How many epochs of n_rows rows one call should run on a network of coefs."""
    products = n_rows * sum(c.size for c in coefs)
    return max(1, min(BLOCK_PRODUCTS // max(products, 1), BLOCK_ROWS // max(n_rows, 1)))


# A fit's first block is short and each next one twice the last (up to epochs_per_call):
# a fit that the stopping rule ends early has drawn few row orders it does not use (each
# a permutation of the rows; giving them back replays the used ones).
FIRST_BLOCK_EPOCHS = 8


def block_sizes(per_call):
    """The epochs of each call to the kernels: FIRST_BLOCK_EPOCHS, then twice the last,
    at most per_call."""
    k = min(FIRST_BLOCK_EPOCHS, per_call)
    while True:
        yield k
        k = min(2 * k, per_call)


class RowOrders:
    """The row order of each epoch: a permutation `random_state.shuffle(np.arange(n))`
    (that is, `random_state.permutation(n)`), which, with compound (scikit-learn's loop,
    whose `sklearn.utils.shuffle` permutes the order it is given), permutes the previous
    epoch's order. Orders are drawn ahead for a block of epochs; `keep(k)` then puts
    random_state where drawing k of them would have left it, so that a user's
    RandomState instance ends as a loop of one epoch per call would leave it. With
    rewind=False (a RandomState that no one sees again: the fit's own, made from an
    integer seed) the draws not used are dropped instead: rewinding costs a copy of the
    generator's state per block."""

    def __init__(self, n, random_state, compound=True, rewind=True):
        self.n = n
        self.random_state = random_state
        self.compound = compound
        self.rewind = rewind
        self.current = np.arange(n, dtype=np.int64)
        self._drawn = None

    def _permute(self, order):
        return order[self.random_state.permutation(self.n)]

    def draw(self, k):
        """The next k epochs' orders, a (k, n) int64 array."""
        self._state = self.random_state.get_state() if self.rewind else None
        orders = np.empty((k, self.n), dtype=np.int64)
        order = self.current
        for e in range(k):
            orders[e] = self._permute(order)
            if self.compound:
                order = orders[e]
        self._drawn = orders
        return orders

    def keep(self, k):
        """The first k orders of the last draw were used (the others are given back)."""
        orders, self._drawn = self._drawn, None
        if k < len(orders) and self.rewind:
            self.random_state.set_state(self._state)
            for _ in range(k):
                self._permute(self.current)
        if k and self.compound:
            self.current = orders[k - 1].copy()


class CtrlCBetweenEpochs:
    """Ctrl-C while a fit's epochs run in the main thread is noted, not raised at once.

    Python raises KeyboardInterrupt at whatever line the main thread is on; between two
    blocks of epochs that can be after the kernels updated the weights and before the
    loss curve, n_iter_ or the row orders recorded it. Inside this block the SIGINT
    handler only notes the Ctrl-C (_kernels.note_sigint): the kernels stop before their
    next mini-batch as for a Ctrl-C they see themselves (the epoch is put back and
    KeyboardInterrupt returned), the Python code in between runs to its end, `check()`
    raises a noted Ctrl-C at a safe point of a loop without the kernels, and leaving the
    block raises one not yet taken (unless an exception is already on its way). Another
    thread (which Python never interrupts) or a SIGINT handler of the user's is left as
    it is."""

    def __enter__(self):
        self.held = (threading.current_thread() is threading.main_thread()
                     and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        if self.held:
            _kernels.hold_sigint(True)
            signal.signal(signal.SIGINT, _kernels.note_sigint)
        return self

    def check(self):
        """Raise KeyboardInterrupt if a Ctrl-C was noted."""
        if self.held and _kernels.take_sigint():
            raise KeyboardInterrupt

    def __exit__(self, exc_type, exc, tb):
        if self.held:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            noted = _kernels.take_sigint()
            _kernels.hold_sigint(False)
            if noted and exc_type is None:
                raise KeyboardInterrupt
        return False


class EpochsResult:
    """What a block of epochs did: losses and events (fm_event codes) of the epochs that
    completed, whether the stopping rule ended training, and the exception (or None) that
    ended the block early: the parameters are then as the last completed epoch left them."""

    def __init__(self, losses, events, stopped, error):
        self.losses, self.events, self.stopped, self.error = losses, events, stopped, error


def train_epochs(coefs, intercepts, spec, X, Y, sample_weight, orders, n_epochs,
                 batch_size, optimizer, run, alpha=0.0, loss_scale=1.0, dropout=None,
                 dropout_seed=0):
    """Up to n_epochs epochs in one call to the kernels (epoch e over the rows orders[e],
    or in order when orders is None), with the schedule and stopping rule of run (fm_run's
    fields; updated in place) between them; dropout: None or one rate per hidden layer,
    the units dropped by a hash of (dropout_seed, the samples seen before the epoch, the
    row, the unit). Returns an EpochsResult. Each epoch is all or
    nothing: when one fails (non-finite loss or weights: Diverged; KeyboardInterrupt;
    MemoryError; no batch with weight: ValueError), the parameters, the optimiser and run
    are put back as they were before it (by replaying the block's earlier epochs from its
    start, which gives the same numbers) and the error is returned in the result."""
    params = coefs + intercepts
    if not optimizer.fits(params):
        raise ValueError("the optimiser's state does not fit the parameters")
    optimizer.m[:] = [aligned(a) for a in optimizer.m]
    optimizer.v[:] = [aligned(a) for a in optimizer.v]
    saved = [p.copy() for p in params]
    saved_opt, saved_lr, saved_run = optimizer.state(), optimizer.learning_rate, dict(run)

    def call(k):
        args = dict(optimizer.kernel_args(), t=optimizer.t, alpha=alpha, m=optimizer.m,
                    v=optimizer.v, dropout=dropout, dropout_seed=dropout_seed)
        try:
            status, losses, events, exc = _kernels.train_epochs(
                coefs, intercepts, spec.hidden, spec.out, spec.loss, spec.slope, X, Y,
                sample_weight, None if orders is None else orders[:k], k, int(batch_size),
                loss_scale, args, run, spec.compute)
        finally:
            optimizer.t = args["t"]
            if optimizer.solver == SOLVERS["sgd"]:
                optimizer.learning_rate = args["lr"]
        if status in (STATUS_OK, STATUS_STOPPED):
            return losses, events, status == STATUS_STOPPED, None
        if status == STATUS_NONFINITE:
            exc = Diverged(
                "the loss or the weights became non-finite (NaN or inf); the weights of "
                "the last finite epoch were kept. Lower the learning rate or scale the "
                "input.")
        elif status == STATUS_ZERO_WEIGHT:
            exc = ValueError("the sample weights of every mini-batch sum to zero: there "
                             "is nothing to train on")
        elif status == STATUS_NOMEM:
            exc = MemoryError("fastmlp: could not allocate the training workspace")
        elif exc is None:
            exc = KeyboardInterrupt()
        return losses, events, False, exc

    def restore():
        for dst, src in zip(params, saved):
            dst[...] = src
        optimizer.restore(saved_opt)
        optimizer.learning_rate = saved_lr
        run.clear()
        run.update(saved_run)

    losses, events, stopped, error = call(n_epochs)
    if error is not None:
        # the failed epoch left the parameters half-updated: replay those before it
        restore()
        if len(losses):
            _, _, _, again = call(len(losses))
            if again is not None:  # interrupted again: back to the block's start
                restore()
                losses, events, error = losses[:0], events[:0], again
    return EpochsResult(losses.tolist(), events.tolist(), stopped, error)
