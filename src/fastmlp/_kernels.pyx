# cython: language_level=3, cdivision=True
"""Thin bindings to the C kernels of csrc/.

The Python layer validates and converts every array before it gets here (dtype,
C-contiguity); these functions map arrays to pointers, pick the float32 or float64
kernel by the dtype of the first array, and release the GIL around the C call. Every
shape and index range the C side relies on is checked here first, so that a wrong array
raises ValueError (and an allocation failure MemoryError), never crashes.
"""
cimport cython
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE,
                            PyBuffer_Release, PyObject_GetBuffer)
from cpython.pythread cimport PyThread_get_thread_ident
from libc.stdint cimport int64_t, uint64_t, uintptr_t
from libc.stdlib cimport malloc, free

import numpy as np

cdef extern from "fastmlp.h" nogil:
    # The codes of fastmlp.h, as Python enums (the tables below are derived from them).
    cpdef enum fm_act:
        FM_IDENTITY, FM_LOGISTIC, FM_TANH, FM_RELU, FM_LEAKY_RELU, FM_SOFTMAX, FM_EXP
    cpdef enum fm_loss:
        FM_SQUARED_ERROR, FM_ABSOLUTE_ERROR, FM_BINARY_LOG_LOSS, FM_CATEGORICAL_LOG_LOSS,
        FM_POISSON
    cpdef enum fm_solver:
        FM_SGD, FM_ADAM
    cpdef enum fm_status:
        FM_OK, FM_NONFINITE, FM_INTERRUPTED, FM_NOMEM, FM_ZERO_WEIGHT, FM_STOPPED
    cpdef enum fm_schedule:
        FM_CONSTANT, FM_INVSCALING, FM_ADAPTIVE
    cpdef enum fm_event:
        FM_EVENT_NONE, FM_EVENT_STOP, FM_EVENT_LR_DECREASED
    cpdef enum fm_compute:
        FM_FLOAT32, FM_BFLOAT16
    ctypedef int64_t fm_int
    ctypedef int (*fm_stop_fn)(void *ctx) noexcept nogil
    ctypedef struct fm_net:
        fm_int n_layers
        const fm_int *sizes
        void **W
        void **b
        int hidden_act
        const int *hidden_acts
        int out_act
        int loss
        double slope
        int compute
    ctypedef struct fm_data:
        fm_int n, d, n_out
        const void *X
        const fm_int *indptr
        const fm_int *indices
        const void *data
        const void *Y
        const void *sw
    ctypedef struct fm_optim:
        int solver
        double lr, momentum
        int nesterov
        double beta1, beta2, eps
        fm_int t
        double alpha
        void **m
        void **v
        const double *dropout
        uint64_t dropout_seed
        fm_int dropout_epoch
    ctypedef struct fm_run:
        int schedule
        double lr_init, power_t
        fm_int t
        int check_loss
        double tol
        fm_int n_iter_no_change
        double best_loss
        fm_int no_improvement

    const char *fm_isa()
    int fm_set_isa(const char *name)
    int fm_isa_count()
    const char *fm_isa_name(int i)
    int fm_max_threads()
    int fm_gov_preferred(int kind, double flops)
    void fm_gov_test_delay(double one, double all)
    int fm_gov_stats(int kind, double flops, fm_int *runs, fm_int *aborted, double *cost)
    void fm_fail_allocations_after(fm_int count)
    int fm_in_forked_child()
    cpdef enum fm_phase:
        FM_PH_PAIR, FM_PH_FORWARD, FM_PH_LOSS, FM_PH_BACK_OUT, FM_PH_BACK_HIDDEN,
        FM_PH_BACK_FIRST, FM_PH_BATCH, FM_PHASES
    int fm_phase_read(double *out, int *cycles)

    int fm_gemm_f32(int, int, fm_int, fm_int, fm_int, const float *, fm_int, const float *,
                     fm_int, float, float *, fm_int, const float *, int, double, const float *)
    int fm_gemm_f64(int, int, fm_int, fm_int, fm_int, const double *, fm_int, const double *,
                     fm_int, double, double *, fm_int, const double *, int, double,
                     const double *)
    int fm_gemm_bf16_f32(int, int, fm_int, fm_int, fm_int, const float *, fm_int,
                         const float *, fm_int, float, float *, fm_int, const float *, int,
                         double, const float *)
    void fm_round_bf16_f32(const float *, float *, fm_int)
    void fm_gemm_ref_f32(int, int, fm_int, fm_int, fm_int, const float *, fm_int,
                         const float *, fm_int, float, float *, fm_int)
    void fm_gemm_ref_f64(int, int, fm_int, fm_int, fm_int, const double *, fm_int,
                         const double *, fm_int, double, double *, fm_int)
    int fm_dense_forward_f32(float *, const float *, const float *, const float *, fm_int,
                              fm_int, fm_int, int, double)
    int fm_dense_forward_f64(double *, const double *, const double *, const double *,
                              fm_int, fm_int, fm_int, int, double)
    int fm_dense_backward_f32(float *, float *, float *, const float *, const float *,
                               const float *, fm_int, fm_int, fm_int, int, double)
    int fm_dense_backward_f64(double *, double *, double *, const double *, const double *,
                               const double *, fm_int, fm_int, fm_int, int, double)
    double fm_loss_grad_f32(float *, const float *, const float *, const float *, fm_int,
                            fm_int, int, int)
    double fm_loss_grad_f64(double *, const double *, const double *, const double *, fm_int,
                            fm_int, int, int)
    void fm_sgd_update_f32(float *, float *, const float *, fm_int, double, double, double,
                           double, int)
    void fm_sgd_update_f64(double *, double *, const double *, fm_int, double, double, double,
                           double, int)
    void fm_adam_update_f32(float *, float *, float *, const float *, fm_int, double, double,
                            double, double, double, double)
    void fm_adam_update_f64(double *, double *, double *, const double *, fm_int, double,
                            double, double, double, double, double)
    int fm_epoch_train_f32(const fm_net *, fm_optim *, const fm_data *, const fm_int *, fm_int,
                           double, double *, fm_int *, fm_stop_fn, void *)
    int fm_epoch_train_f64(const fm_net *, fm_optim *, const fm_data *, const fm_int *, fm_int,
                           double, double *, fm_int *, fm_stop_fn, void *)
    int fm_train_epochs_f32(const fm_net *, fm_optim *, fm_run *, const fm_data *,
                            const fm_int *, fm_int, fm_int, double, double *, int *, fm_int *,
                            fm_stop_fn, void *)
    int fm_train_epochs_f64(const fm_net *, fm_optim *, fm_run *, const fm_data *,
                            const fm_int *, fm_int, fm_int, double, double *, int *, fm_int *,
                            fm_stop_fn, void *)
    int fm_loss_and_grad_f32(const fm_net *, const fm_data *, double, double, void **,
                             void **, double *)
    int fm_loss_and_grad_f64(const fm_net *, const fm_data *, double, double, void **,
                             void **, double *)
    int fm_forward_net_f32(const fm_net *, const fm_data *, float *, int)
    int fm_forward_net_f64(const fm_net *, const fm_data *, double *, int)
    int fm_all_finite_f32(const float *, fm_int)
    int fm_all_finite_f64(const double *, fm_int)

cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1

def _codes(enum):
    """{name: code} of a C enum: FM_LEAKY_RELU is "leaky_relu"."""
    return {member.name[3:].lower(): int(member) for member in enum}


ACT_CODES = _codes(fm_act)
HIDDEN_ACT_CODES = {k: v for k, v in ACT_CODES.items() if v < FM_SOFTMAX}  # see fastmlp.h
LOSS_CODES = _codes(fm_loss)
SOLVER_CODES = _codes(fm_solver)
COMPUTE_CODES = _codes(fm_compute)  # what a float32 network's products compute in
STATUS_OK, STATUS_NONFINITE, STATUS_INTERRUPTED = int(FM_OK), int(FM_NONFINITE), int(FM_INTERRUPTED)
STATUS_NOMEM, STATUS_ZERO_WEIGHT = int(FM_NOMEM), int(FM_ZERO_WEIGHT)
STATUS_STOPPED = int(FM_STOPPED)
SCHEDULE_CODES = _codes(fm_schedule)
EVENT_STOP, EVENT_LR_DECREASED = int(FM_EVENT_STOP), int(FM_EVENT_LR_DECREASED)


def isa():
    """The instruction set the kernels run on: 'generic', 'avx2', 'avx512',
    'avx512_bf16' or 'amx_bf16'."""
    return fm_isa().decode()


def set_isa(name):
    """Run the kernels on the named instruction set; ValueError if this CPU lacks it."""
    if fm_set_isa(name.encode()) != 0:
        raise ValueError(f"instruction set {name!r} is unknown or not supported by this CPU")


cdef extern from *:
    """
    #ifndef FM_BUILD_COMPILER
    #define FM_BUILD_COMPILER "unknown"
    #endif
    #ifndef FM_BUILD_FLAGS
    #define FM_BUILD_FLAGS "unknown"
    #endif
    #ifdef _OPENMP
    #define FM_OPENMP_VERSION _OPENMP
    #else
    #define FM_OPENMP_VERSION 0
    #endif
    """
    const char *FM_BUILD_COMPILER
    const char *FM_BUILD_FLAGS
    int FM_OPENMP_VERSION


def supported_isas():
    """The instruction sets built in that this CPU has, best first."""
    cdef int i
    cdef const char *name
    out = []
    for i in range(fm_isa_count()):
        name = fm_isa_name(i)
        if name != NULL:
            out.append(name.decode())
    return out


def build_info():
    """What the kernels were built with: compiler, flags, OpenMP version (0: none)."""
    return {"compiler": FM_BUILD_COMPILER.decode(), "flags": FM_BUILD_FLAGS.decode(),
            "openmp": FM_OPENMP_VERSION}


def max_threads():
    """The threads a kernel's parallel region gets now, in this thread."""
    return fm_max_threads()


def governor_preferred(int kind, double flops):
    """The thread governor's way for work of a kind (0: batch, 1: loss and gradient, 2:
    predict) and size in flops, in this thread: 1 all threads, 0 one, -1 not yet known."""
    return fm_gov_preferred(kind, flops)


def governor_stats(int kind, double flops):
    """What the thread governor did in this thread for work of a kind and size (as in
    governor_preferred): {"runs": (units on one thread, on all), "aborted": units on all
    threads that overran their deadline and finished on one, "cost": (recent seconds per
    flop of each way, 0.0 when not timed)}, or None for work too small to govern."""
    cdef fm_int runs[2]
    cdef fm_int aborted
    cdef double cost[2]
    if not fm_gov_stats(kind, flops, runs, &aborted, cost):
        return None
    return {"runs": (runs[0], runs[1]), "aborted": aborted, "cost": (cost[0], cost[1])}


# the phases' names, in the order of enum fm_phase (FM_PH_PAIR is "pair")
PHASES = tuple(phase.name[6:].lower() for phase in sorted(fm_phase, key=int)
               if phase != FM_PHASES)


def phase_ticks():
    """The phase timers of this thread's training batches since the last call (then
    reset): {phase: ticks summed over the batches, ..., "batches": count, "unit": "cycles"
    (the time-stamp counter) or "ns"}, the phases those of PHASES (fastmlp.h, enum
    fm_phase). None in a build without the timers (CMake's FASTMLP_PHASE_TIMERS=ON builds
    them in: bench/phases.py)."""
    cdef double out[FM_PHASES + 1]
    cdef int cycles = 0
    if not fm_phase_read(out, &cycles):
        return None
    ticks = {name: out[i] for i, name in enumerate(PHASES)}
    ticks["batches"] = int(out[<int>FM_PHASES])
    ticks["unit"] = "cycles" if cycles else "ns"
    return ticks


def governor_test_delay(double one, double all):
    """Testing hook: seconds added to each timed unit of work on one thread / on all
    threads, as if a busy core had delayed it; (0, 0) turns it off."""
    fm_gov_test_delay(one, all)


def fail_allocations_after(fm_int count):
    """Testing hook: after `count` more allocations, every allocation of the kernels
    fails as if memory were exhausted; -1 turns this off."""
    fm_fail_allocations_after(count)


def in_forked_child():
    """True in a process made by fork() from one that loaded the kernels: the kernels
    then run on the calling thread only (OpenMP's thread pool did not survive the fork)."""
    return bool(fm_in_forked_child())


cdef int _raise_status(int status, str what) except -1:
    if status == STATUS_NOMEM:
        raise MemoryError(f"fastmlp: could not allocate the {what} workspace")
    return 0


# ---- pointers -------------------------------------------------------------------------

cdef inline bint _is64(object a) except -1:
    if a.dtype == np.float64:
        return True
    if a.dtype == np.float32:
        return False
    raise TypeError(f"kernels take float32 or float64 arrays, got {a.dtype}")


cdef void *_ptr(object a, bint is64) except NULL:
    """Address of the first element of a non-empty, writable, C-contiguous float array."""
    return _data(a, is64, True)


cdef const void *_cptr(object a, bint is64) except NULL:
    """Address of the first element of a non-empty C-contiguous float array that the
    kernel only reads: read-only buffers (np.memmap opened "r") are taken as they are."""
    return _data(a, is64, False)


cdef void *_data(object a, bint is64, bint writable) except NULL:
    """The array's data through the buffer protocol (a few hundred nanoseconds; the
    caller keeps the array alive while the kernel runs), after checking what the kernels
    rely on: float64 (is64) or float32 elements, C-contiguous, aligned, not empty, and
    writable when they write it."""
    cdef Py_buffer view
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)
    try:
        PyObject_GetBuffer(a, &view, flags)
    except BufferError:
        if writable and not a.flags.writeable:
            raise ValueError("kernels write into this array, but it is read-only") from None
        raise ValueError("kernels take C-contiguous arrays (use np.ascontiguousarray)") \
            from None
    cdef void *p = view.buf
    cdef const char *fmt = view.format
    # one struct character, or one after a native or little-endian byte-order mark
    cdef bint native = fmt[1] == 0 or (fmt[2] == 0 and (fmt[0] == 60 or fmt[0] == 61 or fmt[0] == 64))
    cdef char kind = fmt[0] if fmt[1] == 0 else fmt[1]
    cdef Py_ssize_t size = view.itemsize, length = view.len
    PyBuffer_Release(&view)
    if not native or kind != (100 if is64 else 102) or size != (8 if is64 else 4):  # d, f
        raise ValueError(f"Buffer dtype mismatch: the kernel takes "
                         f"{'float64' if is64 else 'float32'} arrays, got {a.dtype}")
    if length == 0:
        raise ValueError("empty array passed to a kernel")
    if <uintptr_t>p % <uintptr_t>size:
        raise ValueError("kernels take arrays aligned to their element size "
                         "(use np.require(a, requirements='A'))")
    return p


cdef int _check_shape(object a, tuple shape, str name) except -1:
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    return 0


cdef int _check_apart(object out, str name, tuple inputs) except -1:
    """The kernels write `out` while they read `inputs`: they must not overlap."""
    for a in inputs:
        if a is not None and np.may_share_memory(out, a):
            raise ValueError(f"{name} overlaps an input of the same kernel call")
    return 0


cdef int _pointers(void **p, str kernel, tuple written, tuple read, bint is64) except -1:
    """p[i] = the data of the i-th array of written + read (NULL for None), after
    checking that no array the kernel writes overlaps another of the call."""
    cdef Py_ssize_t i
    arrays = written + read
    for i in range(len(written)):
        if written[i] is not None:  # against every other argument, by position
            _check_apart(written[i], f"an output of {kernel}", arrays[:i] + arrays[i + 1:])
    for i in range(len(written)):
        p[i] = _opt_ptr(written[i], is64)
    for i in range(len(read)):
        p[len(written) + i] = <void *>_opt_cptr(read[i], is64)
    return 0


cdef void *_opt_ptr(object a, bint is64) except? NULL:
    if a is None:
        return NULL
    return _ptr(a, is64)


cdef const void *_opt_cptr(object a, bint is64) except? NULL:
    if a is None:
        return NULL
    return _cptr(a, is64)


cdef const fm_int *_iptr(object a) except NULL:
    cdef const int64_t[::1] v = a
    if a.size == 0:
        raise ValueError("empty index array passed to a kernel")
    return &v[0]


@cython.boundscheck(False)
@cython.wraparound(False)
cdef int _check_indices(object a, fm_int n, str name) except -1:
    """Every entry of the int64 array a lies in [0, n)."""
    cdef const int64_t[::1] v = a
    cdef Py_ssize_t i
    cdef bint bad = False
    with nogil:
        for i in range(v.shape[0]):
            if v[i] < 0 or v[i] >= n:
                bad = True
                break
    if bad:
        raise ValueError(f"{name} holds an index outside [0, {n})")
    return 0


cdef class _Net:
    """An fm_net over lists of weight and bias arrays (kept alive by this object).
    hidden_act is one activation code for every hidden layer, or a tuple of one code per
    hidden layer."""
    cdef fm_net net
    cdef fm_int *sizes
    cdef void **W
    cdef void **b
    cdef int *acts
    cdef list keep
    cdef bint is64

    def __cinit__(self, list coefs, list intercepts, hidden_act, int out_act, int loss,
                  double slope, bint writable=True, int compute=FM_FLOAT32):
        cdef Py_ssize_t L = len(coefs), l
        if L == 0 or len(intercepts) != L:
            raise ValueError("a network needs as many intercepts as coefs, at least one")
        codes = hidden_act if isinstance(hidden_act, tuple) else (hidden_act,) * (L - 1)
        if len(codes) != L - 1:
            raise ValueError(f"{len(codes)} hidden activations for a network of {L - 1} "
                             f"hidden layers")
        if any(not 0 <= code < FM_SOFTMAX for code in codes) or \
                not 0 <= out_act <= FM_EXP:
            raise ValueError("activation codes out of range")
        if isinstance(hidden_act, tuple) and L > 1:
            self.acts = <int *>malloc((L - 1) * sizeof(int))
            if not self.acts:
                raise MemoryError()
            for l in range(L - 1):
                self.acts[l] = codes[l]
        self.is64 = _is64(coefs[0])
        self.keep = list(coefs) + list(intercepts)
        for l in range(L):
            if coefs[l].ndim != 2 or intercepts[l].ndim != 1:
                raise ValueError(f"layer {l}: coefs must be 2-D and intercepts 1-D, got "
                                 f"shapes {coefs[l].shape} and {intercepts[l].shape}")
            if _is64(coefs[l]) != self.is64 or _is64(intercepts[l]) != self.is64:
                raise TypeError("coefs and intercepts must all have one dtype")
        _check_compute(compute, self.is64)
        self.sizes = <fm_int *>malloc((L + 1) * sizeof(fm_int))
        self.W = <void **>malloc(L * sizeof(void *))
        self.b = <void **>malloc(L * sizeof(void *))
        if not self.sizes or not self.W or not self.b:
            raise MemoryError()
        self.sizes[0] = coefs[0].shape[0]
        for l in range(L):
            if coefs[l].shape[0] != self.sizes[l] or intercepts[l].shape != (coefs[l].shape[1],):
                raise ValueError(f"layer {l}: coefs/intercepts shapes do not chain")
            self.sizes[l + 1] = coefs[l].shape[1]
            if writable:
                self.W[l] = _ptr(coefs[l], self.is64)
                self.b[l] = _ptr(intercepts[l], self.is64)
            else:  # a forward pass only reads the weights
                self.W[l] = <void *>_cptr(coefs[l], self.is64)
                self.b[l] = <void *>_cptr(intercepts[l], self.is64)
        self.net.n_layers = L
        self.net.sizes = self.sizes
        self.net.W = self.W
        self.net.b = self.b
        self.net.hidden_act = codes[0] if L > 1 else FM_IDENTITY
        self.net.hidden_acts = self.acts
        self.net.out_act = out_act
        self.net.loss = loss
        self.net.slope = slope
        self.net.compute = compute

    def __dealloc__(self):
        free(self.sizes)
        free(self.W)
        free(self.b)
        free(self.acts)


cdef class _Data:
    """An fm_data over X (dense 2-D array or a (data, indices, indptr, shape) CSR tuple),
    Y and sample weights."""
    cdef fm_data data
    cdef list keep

    def __cinit__(self, X, Y, sw, bint is64):
        self.keep = [X, Y, sw]
        if isinstance(X, tuple):
            values, indices, indptr, shape = X
            self.data.n, self.data.d = shape
            self.data.X = NULL
            self.data.data = _opt_cptr(values if values.size else None, is64)
            self.data.indices = _iptr(indices) if indices.size else NULL
            self.data.indptr = _iptr(indptr)
        else:
            if X.ndim != 2:
                raise ValueError(f"X must be 2-D, got shape {X.shape}")
            self.data.n, self.data.d = X.shape
            self.data.X = _cptr(X, is64)
        # (n, n_out), or refused by check()
        self.data.n_out = Y.shape[1] if Y is not None and Y.ndim == 2 else 0
        self.data.Y = _opt_cptr(Y, is64)
        self.data.sw = _opt_cptr(sw, is64)

    cdef int check(self, fm_int d, fm_int n_out) except -1:
        """X has d columns (a valid CSR structure when sparse), Y (when given) is
        (n, n_out) and the sample weights (n,)."""
        X, Y, sw = self.keep
        cdef fm_int n = self.data.n
        if self.data.d != d:
            raise ValueError(f"X has {self.data.d} features, but the network's first layer "
                             f"takes {d}")
        if isinstance(X, tuple):
            values, indices, indptr, _ = X
            _check_shape(indptr, (n + 1,), "CSR indptr")
            nnz = indptr[n]
            if indptr[0] != 0 or nnz != values.shape[0] or nnz != indices.shape[0] \
                    or (n and np.any(indptr[1:] < indptr[:-1])):
                raise ValueError("the CSR matrix's indptr is not a valid row index")
            if nnz:
                _check_indices(indices, d, "the CSR matrix's column indices")
        if Y is not None:
            if Y.ndim != 2:
                raise ValueError(f"targets must be 2-D, got shape {Y.shape}")
            _check_shape(Y, (n, n_out), "the target matrix")
        if sw is not None:
            _check_shape(sw, (n,), "sample_weight")
        return 0


cdef fm_int _interrupt_countdown = -1


def interrupt_after_batches(fm_int count):
    """Testing hook: the epochs that follow run `count` more mini-batches, then stop as
    Ctrl-C would stop them, with KeyboardInterrupt (once); -1 turns this off."""
    global _interrupt_countdown
    _interrupt_countdown = count


# Ctrl-C held back while a fit runs (see _engine.CtrlCBetweenEpochs): the SIGINT handler
# note_sigint only notes it, and the next poll before a mini-batch of the thread that
# installed it stops the epoch there, or that thread raises it at its next safe point.
cdef bint _sigint_noted = False
cdef unsigned long _sigint_thread = 0


def note_sigint(signum, frame):
    """SIGINT handler while a fit in the main thread runs: notes the Ctrl-C (take_sigint)
    instead of raising KeyboardInterrupt wherever the main thread happens to be."""
    global _sigint_noted
    _sigint_noted = True


def hold_sigint(bint on):
    """Ctrl-C noted by note_sigint stops the epochs of the calling thread (on) or of no
    thread (off); either way a note not yet taken is dropped."""
    global _sigint_noted, _sigint_thread
    _sigint_noted = False
    _sigint_thread = PyThread_get_thread_ident() if on else 0


def take_sigint():
    """Whether a Ctrl-C was noted since the last take (and forget it)."""
    global _sigint_noted
    noted, _sigint_noted = _sigint_noted, False
    return noted


cdef int _stop_requested(void *ctx) noexcept nogil:
    """Polled before each mini-batch: runs Python's signal handlers (Ctrl-C) and keeps the
    exception they raise, or a KeyboardInterrupt for a Ctrl-C note_sigint noted for this
    thread, for the caller to re-raise."""
    global _interrupt_countdown, _sigint_noted
    with gil:
        if _interrupt_countdown == 0:
            _interrupt_countdown = -1
            (<list>ctx).append(KeyboardInterrupt())
            return 1
        if _interrupt_countdown > 0:
            _interrupt_countdown -= 1
        try:
            PyErr_CheckSignals()
        except BaseException as exc:
            (<list>ctx).append(exc)
            return 1
        if _sigint_noted and _sigint_thread == PyThread_get_thread_ident():
            _sigint_noted = False
            (<list>ctx).append(KeyboardInterrupt())
            return 1
    return 0


cdef int _check_compute(int compute, bint is64) except -1:
    """compute is a code of COMPUTE_CODES that the element type allows."""
    if compute not in COMPUTE_CODES.values():
        raise ValueError(f"unknown compute code {compute}; expected one of {COMPUTE_CODES}")
    if is64 and compute == FM_BFLOAT16:
        raise TypeError("bfloat16 products take float32 arrays, got float64")
    return 0


# ---- single kernels (tests, benchmarks) ----------------------------------------------

def round_bfloat16(x, out):
    """out = x rounded to bfloat16, as float32 (fm_round_bf16_f32 in fastmlp.h: nearest
    even, subnormal results flushed to signed zero, NaN made quiet); out may be x."""
    if x.shape != out.shape:
        raise ValueError(f"round_bfloat16: out has shape {out.shape}, expected {x.shape}")
    if _is64(x) or _is64(out):
        raise TypeError("round_bfloat16 takes float32 arrays")
    cdef const float *src = <const float *>_cptr(x, False)
    cdef float *dst = <float *>_ptr(out, False)
    cdef fm_int n = x.size
    if np.may_share_memory(x, out) and src != <const float *>dst:
        raise ValueError("round_bfloat16: out overlaps x other than as the same array")
    with nogil:
        fm_round_bf16_f32(src, dst, n)
    return out


def gemm(A, B, C, bint transA=False, bint transB=False, double beta=0.0, bias=None,
         int act=0, double slope=0.0, dact_src=None, bint reference=False,
         int compute=FM_FLOAT32):
    """C = beta*C + op(A) op(B), then the epilogue (see fm_gemm in fastmlp.h); with
    compute=FM_BFLOAT16 (float32 only) the bfloat16 products of fm_gemm_bf16_f32."""
    cdef bint is64 = _is64(C)
    _check_compute(compute, is64)
    if reference and compute != FM_FLOAT32:
        raise ValueError("gemm: the reference GEMM computes in the element type only")
    if A.ndim != 2 or B.ndim != 2 or C.ndim != 2:
        raise ValueError("gemm: A, B and C must be 2-D")
    cdef fm_int M = C.shape[0], N = C.shape[1]
    cdef fm_int K = A.shape[0] if transA else A.shape[1]
    if (A.shape[1] if transA else A.shape[0]) != M or (B.shape[1] if transB else B.shape[0]) != K \
            or (B.shape[0] if transB else B.shape[1]) != N:
        raise ValueError("gemm: shapes do not agree")
    if (bias is not None and bias.shape != (N,)) or \
            (dact_src is not None and dact_src.shape != (M, N)):
        raise ValueError("gemm: bias must be (N,) and dact_src (M, N)")
    cdef void *p[5]  # C; A, B, bias, dact_src
    _pointers(p, "gemm", (C,), (A, B, bias, dact_src), is64)
    cdef int status = STATUS_OK
    cdef fm_int lda = A.shape[1], ldb = B.shape[1]
    with nogil:
        if reference and is64:
            fm_gemm_ref_f64(transA, transB, M, N, K, <const double *>p[1], lda,
                            <const double *>p[2], ldb, beta, <double *>p[0], N)
        elif reference:
            fm_gemm_ref_f32(transA, transB, M, N, K, <const float *>p[1], lda,
                            <const float *>p[2], ldb, <float>beta, <float *>p[0], N)
        elif compute == FM_BFLOAT16:
            status = fm_gemm_bf16_f32(transA, transB, M, N, K, <const float *>p[1], lda,
                                      <const float *>p[2], ldb, <float>beta, <float *>p[0], N,
                                      <const float *>p[3], act, slope, <const float *>p[4])
        elif is64:
            status = fm_gemm_f64(transA, transB, M, N, K, <const double *>p[1], lda,
                                 <const double *>p[2], ldb, beta, <double *>p[0], N,
                                 <const double *>p[3], act, slope, <const double *>p[4])
        else:
            status = fm_gemm_f32(transA, transB, M, N, K, <const float *>p[1], lda,
                                 <const float *>p[2], ldb, <float>beta, <float *>p[0], N,
                                 <const float *>p[3], act, slope, <const float *>p[4])
    _raise_status(status, "GEMM packing")
    return C


def dense_forward(out, inp, W, bias, int act, double slope=0.0):
    """out (B,O) = act(inp (B,I) . W (I,O) + bias (O))."""
    cdef bint is64 = _is64(out)
    if inp.ndim != 2 or W.ndim != 2 or out.ndim != 2 or bias.ndim != 1:
        raise ValueError("dense_forward: inp, W and out must be 2-D, bias 1-D")
    cdef fm_int B = inp.shape[0], I = inp.shape[1], O = W.shape[1]
    if W.shape[0] != I or out.shape[0] != B or out.shape[1] != O or bias.shape[0] != O:
        raise ValueError("dense_forward: shapes do not agree")
    cdef void *p[4]  # out; inp, W, bias
    _pointers(p, "dense_forward", (out,), (inp, W, bias), is64)
    cdef int status = STATUS_OK
    with nogil:
        if is64:
            status = fm_dense_forward_f64(<double *>p[0], <const double *>p[1],
                                          <const double *>p[2], <const double *>p[3], B, I, O,
                                          act, slope)
        else:
            status = fm_dense_forward_f32(<float *>p[0], <const float *>p[1],
                                          <const float *>p[2], <const float *>p[3], B, I, O,
                                          act, slope)
    _raise_status(status, "GEMM packing")
    return out


def dense_backward(dinp, dW, db, dout, inp, W, int inp_act, double slope=0.0):
    """dW = inp^T dout; db = column sums of dout; dinp = (dout W^T) * act'(inp) unless None."""
    cdef bint is64 = _is64(dW)
    if inp.ndim != 2 or W.ndim != 2 or dout.ndim != 2:
        raise ValueError("dense_backward: inp, W and dout must be 2-D")
    cdef fm_int B = inp.shape[0], I = inp.shape[1], O = W.shape[1]
    if W.shape[0] != I or dout.shape[0] != B or dout.shape[1] != O or dW.shape != W.shape \
            or db.shape != (O,) or (dinp is not None and dinp.shape != inp.shape):
        raise ValueError("dense_backward: shapes do not agree")
    cdef void *p[6]  # dinp, dW, db; dout, inp, W
    _pointers(p, "dense_backward", (dinp, dW, db), (dout, inp, W), is64)
    cdef int status = STATUS_OK
    with nogil:
        if is64:
            status = fm_dense_backward_f64(<double *>p[0], <double *>p[1], <double *>p[2],
                                           <const double *>p[3], <const double *>p[4],
                                           <const double *>p[5], B, I, O, inp_act, slope)
        else:
            status = fm_dense_backward_f32(<float *>p[0], <float *>p[1], <float *>p[2],
                                           <const float *>p[3], <const float *>p[4],
                                           <const float *>p[5], B, I, O, inp_act, slope)
    _raise_status(status, "GEMM packing")


def loss_grad(delta, a, y, sw, int out_act, int loss):
    """delta = dC/dz of the output layer (times sw); returns sum_b sw_b * l(y_b, a_b)."""
    cdef bint is64 = _is64(a)
    if a.ndim != 2:
        raise ValueError("loss_grad: a must be 2-D")
    cdef fm_int B = a.shape[0], O = a.shape[1]
    if delta.shape != a.shape or y.shape != a.shape or (sw is not None and sw.shape != (B,)):
        raise ValueError("loss_grad: shapes do not agree")
    cdef void *p[4]  # delta; a, y, sw
    _pointers(p, "loss_grad", (delta,), (a, y, sw), is64)
    cdef double out
    with nogil:
        if is64:
            out = fm_loss_grad_f64(<double *>p[0], <const double *>p[1], <const double *>p[2],
                                   <const double *>p[3], B, O, out_act, loss)
        else:
            out = fm_loss_grad_f32(<float *>p[0], <const float *>p[1], <const float *>p[2],
                                   <const float *>p[3], B, O, out_act, loss)
    return out


def sgd_update(w, vel, graw, double alpha, double S, double lr, double momentum,
               bint nesterov):
    cdef bint is64 = _is64(w)
    if vel.shape != w.shape or graw.shape != w.shape:
        raise ValueError("sgd_update: shapes do not agree")
    cdef void *p[3]  # w, vel; graw
    _pointers(p, "sgd_update", (w, vel), (graw,), is64)
    cdef fm_int P = w.size
    with nogil:
        if is64:
            fm_sgd_update_f64(<double *>p[0], <double *>p[1], <const double *>p[2], P, alpha,
                              S, lr, momentum, nesterov)
        else:
            fm_sgd_update_f32(<float *>p[0], <float *>p[1], <const float *>p[2], P, alpha,
                              S, lr, momentum, nesterov)


def adam_update(w, m, v, graw, double alpha, double S, double lr_t, double beta1,
                double beta2, double eps):
    cdef bint is64 = _is64(w)
    if m.shape != w.shape or v.shape != w.shape or graw.shape != w.shape:
        raise ValueError("adam_update: shapes do not agree")
    cdef void *p[4]  # w, m, v; graw
    _pointers(p, "adam_update", (w, m, v), (graw,), is64)
    cdef fm_int P = w.size
    with nogil:
        if is64:
            fm_adam_update_f64(<double *>p[0], <double *>p[1], <double *>p[2],
                               <const double *>p[3], P, alpha, S, lr_t, beta1, beta2, eps)
        else:
            fm_adam_update_f32(<float *>p[0], <float *>p[1], <float *>p[2],
                               <const float *>p[3], P, alpha, S, lr_t, beta1, beta2, eps)


# ---- whole-network passes ------------------------------------------------------------

cdef void **_ptr_list(list arrays, bint is64, list shapes, str name) except NULL:
    """Pointers to arrays, which must have the given shapes (one per array)."""
    cdef Py_ssize_t i, n = len(arrays)
    if n != len(shapes):
        raise ValueError(f"{name}: {n} arrays for {len(shapes)} parameter arrays")
    for i in range(n):
        _check_shape(arrays[i], shapes[i], f"{name}[{i}]")
    cdef void **out = <void **>malloc(max(n, 1) * sizeof(void *))
    if not out:
        raise MemoryError()
    try:
        for i in range(n):
            out[i] = _ptr(arrays[i], is64)
    except BaseException:
        free(out)
        raise
    return out


cdef list _param_shapes(list coefs, list intercepts):
    return [c.shape for c in coefs] + [b.shape for b in intercepts]


cdef int _optim_init(fm_optim *opt, int solver, double lr, double momentum, bint nesterov,
                     double beta1, double beta2, double eps, fm_int t, double alpha, list m,
                     list v, bint is64, list shapes) except -1:
    """Fill opt; its m (and, for Adam, v) pointer arrays are malloc'ed: free them."""
    opt.solver = solver
    opt.lr = lr
    opt.momentum = momentum
    opt.nesterov = nesterov
    opt.beta1 = beta1
    opt.beta2 = beta2
    opt.eps = eps
    opt.t = t
    opt.alpha = alpha
    opt.m = NULL
    opt.v = NULL
    opt.dropout = NULL
    opt.dropout_seed = 0
    opt.dropout_epoch = 0
    opt.m = _ptr_list(m, is64, shapes, "the optimiser's first moments")
    if solver == SOLVER_CODES["adam"]:
        opt.v = _ptr_list(v, is64, shapes, "the optimiser's second moments")
    return 0


def epoch_train(list coefs, list intercepts, hidden_act, int out_act, int loss,
                double slope, X, Y, sw, idx, fm_int batch_size, double loss_scale,
                int solver, double lr, double momentum, bint nesterov, double beta1,
                double beta2, double eps, fm_int t, double alpha, list m, list v,
                int compute=FM_FLOAT32):
    """One epoch of mini-batch training, in place on coefs/intercepts and the optimiser
    state m (velocities or first moments, one per parameter array: coefs then
    intercepts) and v (second moments, Adam).

    Returns (status, loss_sum, rows_done, t): status is one of the STATUS_* codes,
    loss_sum the sum of batch losses times batch rows over the rows_done rows of the
    batches that took a step (batches whose sample weights sum to zero are skipped),
    t Adam's step count. compute: a code of COMPUTE_CODES."""
    cdef _Net net = _Net(coefs, intercepts, hidden_act, out_act, loss, slope, True, compute)
    cdef _Data data = _Data(X, Y, sw, net.is64)
    cdef fm_optim opt
    cdef double loss_sum = 0
    cdef fm_int done = 0
    cdef int status
    cdef list pending = []
    cdef void *ctx = <void *>pending
    cdef const fm_int *ip = NULL
    if Y is None:
        raise ValueError("epoch_train needs targets")
    data.check(net.sizes[0], net.sizes[net.net.n_layers])
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    if idx is not None:
        _check_shape(idx, (data.data.n,), "the shuffle indices")
        _check_indices(idx, data.data.n, "the shuffle indices")
        ip = _iptr(idx)
    # (the parameters and moments are the engine's own arrays: no overlap check per epoch)
    opt.m = opt.v = NULL
    try:
        _optim_init(&opt, solver, lr, momentum, nesterov, beta1, beta2, eps, t, alpha, m, v,
                    net.is64, _param_shapes(coefs, intercepts))
        with nogil:
            if net.is64:
                status = fm_epoch_train_f64(&net.net, &opt, &data.data, ip, batch_size,
                                            loss_scale, &loss_sum, &done, _stop_requested, ctx)
            else:
                status = fm_epoch_train_f32(&net.net, &opt, &data.data, ip, batch_size,
                                            loss_scale, &loss_sum, &done, _stop_requested, ctx)
    finally:
        free(opt.m)
        free(opt.v)
    if status == STATUS_INTERRUPTED and pending:
        raise pending[0]
    _raise_status(status, "training")
    return status, loss_sum, done, opt.t


def train_epochs(list coefs, list intercepts, hidden_act, int out_act, int loss,
                 double slope, X, Y, sw, order, fm_int n_epochs, fm_int batch_size,
                 double loss_scale, dict optimizer, dict run, int compute=FM_FLOAT32):
    """Up to n_epochs epochs with scikit-learn's bookkeeping between them (fm_train_epochs),
    in place on coefs/intercepts and the moments optimizer["m"] (and ["v"]).

    order is None (rows in order) or an (n_epochs, n) int64 array, row e the order of
    epoch e. optimizer holds epoch_train's optimiser arguments (solver, lr, momentum,
    nesterov, beta1, beta2, eps, t, alpha, m, v) and, for dropout, "dropout" (one rate
    per hidden layer) and "dropout_seed" (see fm_optim); run holds fm_run's fields (schedule,
    lr_init, power_t, t, check_loss, tol, n_iter_no_change, best_loss, no_improvement)
    and is updated in place, as are optimizer["t"] and optimizer["lr"].
    Returns (status, losses, events, exc): the STATUS_* code; for each epoch done, its
    mean loss and EVENT_* code; and for STATUS_INTERRUPTED the exception the stop poll
    caught (KeyboardInterrupt), which the caller raises. Nothing is raised for a status:
    the epochs done before a failure count."""
    cdef _Net net = _Net(coefs, intercepts, hidden_act, out_act, loss, slope, True, compute)
    cdef _Data data = _Data(X, Y, sw, net.is64)
    cdef fm_optim opt
    cdef fm_run r
    cdef fm_int done = 0
    cdef int status
    cdef list pending = []
    cdef void *ctx = <void *>pending
    cdef const fm_int *ip = NULL
    if Y is None:
        raise ValueError("train_epochs needs targets")
    data.check(net.sizes[0], net.sizes[net.net.n_layers])
    if batch_size < 1 or n_epochs < 1:
        raise ValueError("batch_size and n_epochs must be >= 1")
    if order is not None:
        _check_shape(order, (n_epochs, data.data.n), "the epochs' row orders")
        flat = np.ravel(order)  # a view: _check_shape wants it C-contiguous
        _check_indices(flat, data.data.n, "the epochs' row orders")
        ip = _iptr(flat)
    losses = np.empty(n_epochs, dtype=np.float64)
    events = np.zeros(n_epochs, dtype=np.intc)
    cdef double[::1] lv = losses
    cdef int[::1] ev = events
    r.schedule = run["schedule"]
    r.lr_init = run["lr_init"]
    r.power_t = run["power_t"]
    r.t = run["t"]
    r.check_loss = run["check_loss"]
    r.tol = run["tol"]
    r.n_iter_no_change = run["n_iter_no_change"]
    r.best_loss = run["best_loss"]
    r.no_improvement = run["no_improvement"]
    # dropout: optimizer["dropout"], None or one rate in [0, 1) per hidden layer
    rates = optimizer.get("dropout")
    cdef const double[::1] rv
    if rates is not None:
        rates = np.ascontiguousarray(rates, dtype=np.float64)
        if rates.shape != (net.net.n_layers - 1,) or not (
                np.all(rates >= 0) and np.all(rates < 1)):
            raise ValueError(f"dropout: {net.net.n_layers - 1} rates in [0, 1) expected, one "
                             f"per hidden layer; got {rates!r}")
        rv = rates
    opt.m = opt.v = NULL
    try:
        _optim_init(&opt, optimizer["solver"], optimizer["lr"], optimizer["momentum"],
                    optimizer["nesterov"], optimizer["beta1"], optimizer["beta2"],
                    optimizer["eps"], optimizer["t"], optimizer["alpha"], optimizer["m"],
                    optimizer["v"], net.is64, _param_shapes(coefs, intercepts))
        if rates is not None and rates.size:
            opt.dropout = &rv[0]
            opt.dropout_seed = <uint64_t>optimizer["dropout_seed"]
        with nogil:
            if net.is64:
                status = fm_train_epochs_f64(&net.net, &opt, &r, &data.data, ip, n_epochs,
                                             batch_size, loss_scale, &lv[0], &ev[0], &done,
                                             _stop_requested, ctx)
            else:
                status = fm_train_epochs_f32(&net.net, &opt, &r, &data.data, ip, n_epochs,
                                             batch_size, loss_scale, &lv[0], &ev[0], &done,
                                             _stop_requested, ctx)
    finally:
        free(opt.m)
        free(opt.v)
    optimizer["t"] = opt.t
    optimizer["lr"] = opt.lr
    run.update(t=r.t, best_loss=r.best_loss, no_improvement=r.no_improvement)
    return status, losses[:done], events[:done], pending[0] if pending else None


def loss_and_grad(list coefs, list intercepts, hidden_act, int out_act, int loss,
                  double slope, X, Y, sw, double alpha, double loss_scale, list gW, list gb,
                  int compute=FM_FLOAT32):
    """Loss of all rows at once; fills gW/gb with the gradient (L-BFGS, gradient checks)."""
    cdef _Net net = _Net(coefs, intercepts, hidden_act, out_act, loss, slope, False, compute)
    cdef _Data data = _Data(X, Y, sw, net.is64)
    cdef void **gw = NULL
    cdef void **gbp = NULL
    cdef double out = 0
    cdef int status
    if Y is None:
        raise ValueError("loss_and_grad needs targets")
    data.check(net.sizes[0], net.sizes[net.net.n_layers])
    # (the gradient arrays are fresh ones of the engine's: no overlap check per call)
    gw = _ptr_list(gW, net.is64, [c.shape for c in coefs], "the weight gradients")
    try:
        gbp = _ptr_list(gb, net.is64, [b.shape for b in intercepts], "the bias gradients")
        with nogil:
            if net.is64:
                status = fm_loss_and_grad_f64(&net.net, &data.data, alpha, loss_scale, gw, gbp,
                                              &out)
            else:
                status = fm_loss_and_grad_f32(&net.net, &data.data, alpha, loss_scale, gw, gbp,
                                              &out)
    finally:
        free(gw)
        free(gbp)
    _raise_status(status, "loss and gradient")
    if status == STATUS_ZERO_WEIGHT:
        raise ValueError("the sample weights sum to zero: there is no loss to minimise")
    return out


def forward_net(list coefs, list intercepts, hidden_act, int out_act, double slope, X,
                out, int compute=FM_FLOAT32):
    """out (n, O) = the network's output on X (dense array or CSR tuple)."""
    cdef _Net net = _Net(coefs, intercepts, hidden_act, out_act, 0, slope, False, compute)
    cdef _Data data = _Data(X, None, None, net.is64)
    data.check(net.sizes[0], 0)
    _check_shape(out, (data.data.n, net.sizes[net.net.n_layers]), "the output array")
    # (out is a fresh array of the engine's: no overlap check)
    cdef void *o = _ptr(out, net.is64)
    cdef int status
    with nogil:
        if net.is64:
            status = fm_forward_net_f64(&net.net, &data.data, <double *>o, 0)
        else:
            status = fm_forward_net_f32(&net.net, &data.data, <float *>o, 0)
    _raise_status(status, "prediction")
    return out


cdef class Predictor:
    """A fitted network's forward pass with all but the input prepared once (the weights'
    pointers and widths): the few microseconds of a one-row prediction go to the
    arithmetic. It keeps the weight arrays alive and reads them at each call, so changes
    made to them in place are seen; `made_for` tells whether it serves given arrays."""
    cdef _Net net
    cdef tuple arrays
    cdef readonly object dtype

    def __cinit__(self, list coefs, list intercepts, hidden_act, int out_act,
                  double slope, int compute=FM_FLOAT32):
        self.net = _Net(coefs, intercepts, hidden_act, out_act, 0, slope, False, compute)
        self.arrays = tuple(coefs) + tuple(intercepts)
        self.dtype = np.dtype(np.float64 if self.net.is64 else np.float32)

    def made_for(self, list coefs, list intercepts):
        """True when coefs and intercepts are the very arrays it was made with."""
        cdef Py_ssize_t i, L = len(coefs)
        if 2 * L != len(self.arrays) or len(intercepts) != L:
            return False
        for i in range(L):
            if coefs[i] is not self.arrays[i] or intercepts[i] is not self.arrays[L + i]:
                return False
        return True

    def __call__(self, X):
        """The output (n, n_outputs) on X, a non-empty C-contiguous 2-D array of the
        network's dtype and input width; None when X holds NaN or inf."""
        cdef fm_int L = self.net.net.n_layers
        if X.ndim != 2 or X.shape[1] != self.net.sizes[0]:
            raise ValueError(f"X must be 2-D with {self.net.sizes[0]} columns, got "
                             f"shape {X.shape}")
        cdef bint is64 = self.net.is64
        cdef const void *x = _cptr(X, is64)
        cdef fm_data data
        data.n = X.shape[0]
        data.d = X.shape[1]
        data.n_out = 0
        data.X = x
        data.indptr = data.indices = NULL
        data.data = data.Y = data.sw = NULL
        out = np.empty((data.n, self.net.sizes[L]), dtype=self.dtype)
        cdef void *o = _ptr(out, is64)
        cdef int status
        with nogil:  # X checked for NaN and inf chunk by chunk, as its rows are read
            if is64:
                status = fm_forward_net_f64(&self.net.net, &data, <double *>o, 1)
            else:
                status = fm_forward_net_f32(&self.net.net, &data, <float *>o, 1)
        if status == STATUS_NONFINITE:
            return None
        _raise_status(status, "prediction")
        return out


def all_finite(X):
    """True when the C-contiguous float32/float64 array X holds no NaN or inf."""
    cdef bint is64 = _is64(X)
    cdef const void *x = _cptr(X, is64)
    cdef fm_int n = X.size
    cdef bint finite
    with nogil:
        finite = (fm_all_finite_f64(<const double *>x, n) if is64 else
                  fm_all_finite_f32(<const float *>x, n))
    return finite
