/* fastmlp.h - the C kernels of fastmlp: dense layers, backprop by the delta rule,
 * SGD/Adam updates and whole training epochs, in float32 (_f32) and float64 (_f64).
 *
 * Size names used in every shape comment:
 *   B  = rows in a mini-batch (or in a chunk of rows)
 *   I  = input width of a layer (n_in), O = output width (n_out)
 *   M, N, K = the generic GEMM sizes: C[M,N] = op(A)[M,K] . op(B)[K,N]
 * All matrices are row-major and C-contiguous unless a leading dimension says otherwise.
 * Weights are (I, O) like scikit-learn's coefs_; activations are (B, features).
 * Every index and size is 64-bit (fm_int).
 *
 * The library is built once per instruction set (generic, avx2, avx512) and the entry
 * points below dispatch at run time to the best one the CPU supports, or to the one named
 * by the environment variable FASTMLP_ISA (generic | avx2 | avx512 | avx512_bf16; the
 * last is avx512 with the AVX512_BF16 micro-kernel of the bfloat16 products).
 */
#ifndef FASTMLP_H
#define FASTMLP_H
#include <stdint.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t fm_int;

/* Activation functions; the first five may be hidden activations. Python's names for the
 * codes of these enums are theirs without FM_, in lower case (fastmlp._kernels derives its
 * tables from the enums). */
enum fm_act {
    FM_IDENTITY = 0,
    FM_LOGISTIC = 1,
    FM_TANH = 2,
    FM_RELU = 3,
    FM_LEAKY_RELU = 4,
    FM_SOFTMAX = 5, /* output only: row-wise over the whole output width */
    FM_EXP = 6      /* output only: the Poisson regressor's inverse link */
};

/* Losses. The data term of the loss of a batch is
 *   scale * (1/S) * sum_b w_b * l(y_b, a_b)          with S = sum_b w_b (w = 1 when no weights)
 * where l is, per row:
 *   SQUARED_ERROR         1/2 ||y - a||^2
 *   ABSOLUTE_ERROR        ||y - a||_1
 *   BINARY_LOG_LOSS       -sum_o [y log a + (1-y) log(1-a)]   (a clipped to [eps, 1-eps])
 *   CATEGORICAL_LOG_LOSS  -sum_o y log a                       (a clipped to [eps, 1-eps])
 *   POISSON               sum_o [y log(y/a) - y + a]
 * 'scale' lets the caller use scikit-learn's convention (squared error averaged over
 * outputs: scale = 1/O) or the course notes' (scale = 1). The gradient is always that of the
 * unscaled loss, as in scikit-learn. */
enum fm_loss {
    FM_SQUARED_ERROR = 0,
    FM_ABSOLUTE_ERROR = 1,
    FM_BINARY_LOG_LOSS = 2,
    FM_CATEGORICAL_LOG_LOSS = 3,
    FM_POISSON = 4
};

enum fm_solver { FM_SGD = 0, FM_ADAM = 1 };

/* What the matrix products of a float32 network compute in (fm_net.compute):
 *   FM_FLOAT32   float32 operands (the element type: the default)
 *   FM_BFLOAT16  operands rounded to bfloat16 as they are packed (fm_round_bf16_f32),
 *                the products summed in float32; everything else (weights, optimiser
 *                state, activations, losses, updates) stays float32.
 * The _f64 entry points ignore it (the Python layer refuses the combination). */
enum fm_compute { FM_FLOAT32 = 0, FM_BFLOAT16 = 1 };

/* Return codes of the training entry points. */
enum fm_status {
    FM_OK = 0,
    FM_NONFINITE = 1,    /* a batch loss was NaN or inf: stopped before updating with it */
    FM_INTERRUPTED = 2,  /* the stop callback asked to stop (Ctrl-C) */
    FM_NOMEM = 3,        /* a workspace allocation failed */
    FM_ZERO_WEIGHT = 4,  /* the sample weights of all rows sum to zero (loss and gradient;
                          * in training: of every mini-batch of an epoch) */
    FM_STOPPED = 5       /* fm_train_epochs: the stopping rule ended training */
};

/* A network of L dense layers. W[l] is (sizes[l], sizes[l+1]), b[l] is (sizes[l+1]).
 * The pointers are float* for _f32 calls and double* for _f64 calls. */
typedef struct {
    fm_int n_layers;       /* L */
    const fm_int *sizes;   /* L + 1 widths, input first */
    void **W;
    void **b;
    int hidden_act;        /* enum fm_act, one of the first five */
    const int *hidden_acts; /* L - 1 of them, one per hidden layer; NULL: hidden_act */
    int out_act;           /* enum fm_act */
    int loss;              /* enum fm_loss */
    double slope;          /* leaky_relu's negative slope */
    int compute;           /* enum fm_compute: what the _f32 layers' products compute in */
} fm_net;

/* Rows of a data set: X dense (n, d) row-major, or CSR (indptr n+1, indices, data);
 * Y dense (n, n_out); optional sample weights sw (n). */
typedef struct {
    fm_int n, d, n_out;
    const void *X;                 /* dense X, or NULL when CSR */
    const fm_int *indptr;          /* CSR X (when X == NULL) */
    const fm_int *indices;
    const void *data;
    const void *Y;                 /* may be NULL for forward-only calls */
    const void *sw;                /* may be NULL */
} fm_data;

/* Optimiser state: for SGD, m holds the velocities; for Adam, m and v the moments.
 * m[l] / v[l] for l < L are the weight slots, m[L + l] / v[L + l] the bias slots. */
typedef struct {
    int solver;            /* enum fm_solver */
    double lr;             /* learning rate (Adam: learning_rate_init) */
    double momentum;
    int nesterov;
    double beta1, beta2, eps;
    fm_int t;              /* Adam's step count, advanced by each update */
    double alpha;          /* L2 penalty */
    void **m;
    void **v;
    /* Inverted dropout in training: hidden layer l's units are dropped with probability
     * dropout[l] (the kept ones scaled by 1 / (1 - dropout[l])); NULL: none. Whether a
     * unit is dropped is a hash of (dropout_seed, dropout_epoch, the data row's index,
     * the unit's index over all hidden layers): the same for any thread count and
     * batch split. fm_train_epochs sets dropout_epoch to run->t before each epoch. */
    const double *dropout; /* L - 1 rates in [0, 1) */
    uint64_t dropout_seed;
    fm_int dropout_epoch;
} fm_optim;

/* What scikit-learn's stochastic training loop does between epochs, for fm_train_epochs.
 * After each epoch of mean loss 'loss' (and n rows):
 *   t += n;
 *   no_improvement = loss > best_loss - tol ? no_improvement + 1 : 0;
 *   best_loss = min(best_loss, loss);
 *   SGD with FM_INVSCALING: lr = lr_init / (t + 1)^power_t;
 *   if no_improvement > n_iter_no_change (and check_loss):
 *     SGD with FM_ADAPTIVE: stop when lr <= 1e-6, else lr /= 5 and no_improvement = 0;
 *     otherwise: stop.
 * With check_loss = 0 (early stopping on a validation score, which the caller computes)
 * only t and the schedule advance. The fields are updated in place. */
enum fm_schedule { FM_CONSTANT = 0, FM_INVSCALING = 1, FM_ADAPTIVE = 2 };

/* What happened after an epoch, for the caller's messages (fm_train_epochs' events). */
enum fm_event { FM_EVENT_NONE = 0, FM_EVENT_STOP = 1, FM_EVENT_LR_DECREASED = 2 };

typedef struct {
    int schedule;          /* enum fm_schedule; SGD only (Adam's lr never changes) */
    double lr_init, power_t;
    fm_int t;              /* samples seen (scikit-learn's t_) */
    int check_loss;        /* apply the stopping rule to the training loss */
    double tol;
    fm_int n_iter_no_change;
    double best_loss;      /* the least epoch loss so far (inf before the first) */
    fm_int no_improvement; /* scikit-learn's _no_improvement_count */
} fm_run;

/* Called once per mini-batch; a non-zero return stops the epoch with FM_INTERRUPTED. */
typedef int (*fm_stop_fn)(void *ctx);

/* Which instruction set the dispatcher runs ("generic", "avx2", "avx512"); the
 * environment variable FASTMLP_ISA (any case) forces one the CPU has. */
const char *fm_isa(void);
/* Force an instruction set by name (any case); returns 0 on success, -1 when unknown or
 * unsupported. */
int fm_set_isa(const char *name);
/* The instruction sets built in: fm_isa_count() of them, fm_isa_name(i) the i-th, or NULL
 * when this CPU lacks it. */
int fm_isa_count(void);
const char *fm_isa_name(int i);
/* The threads a parallel region of the kernels gets when called now from this thread. */
int fm_max_threads(void);
/* Testing hook: after 'count' more allocations every allocation of the kernels fails (as
 * when out of memory) until called with -1. */
void fm_fail_allocations_after(fm_int count);
/* The thread governor (runtime.c) of the calling thread: for work of a kind (0: a
 * training batch, 1: a loss-and-gradient call, 2: a predict call) and size (flops), 1
 * when all threads have been the cheaper way so far, 0 when one thread, -1 when not yet
 * both timed (or too small to time). Testing hook fm_gov_test_delay: seconds added to
 * each timed unit on one thread / on all, as if a busy core had delayed it. */
int fm_gov_preferred(int kind, double flops);
void fm_gov_test_delay(double one, double all);
/* What the governor of the calling thread did for work of a kind and size: units run on
 * one thread (runs[0]) and on all (runs[1]), of which *aborted gave up on all threads
 * past their deadline, and its recent seconds per flop of each way (cost; 0 when not
 * timed). Returns 0 when the size is too small to be governed. */
int fm_gov_stats(int kind, double flops, fm_int runs[2], fm_int *aborted, double cost[2]);
/* 1 in a child made by fork() (its kernels then run on one thread), else 0. */
int fm_in_forked_child(void);
/* Phase timers of the training batches (a diagnostic build: CMake's
 * FASTMLP_PHASE_TIMERS=ON; bench/phases.py): the ticks the calling thread's batches spent
 * in each phase since the last call, in the order of enum fm_phase, then the batches
 * counted, written to out (FM_PHASES + 1 values) and reset. The ticks are the CPU's
 * time-stamp counter on x86-64, nanoseconds elsewhere (*cycles says which: 1, 0).
 * Returns 0, and writes nothing, in a build without the timers. */
enum fm_phase {
    FM_PH_PAIR,        /* bfloat16 pairs of the batch's rows (pair_batch) */
    FM_PH_FORWARD,     /* the forward pass through every layer */
    FM_PH_LOSS,        /* the loss and the output layer's delta */
    FM_PH_BACK_OUT,    /* the output layer's backward products and its step */
    FM_PH_BACK_HIDDEN, /* the hidden layers' between the first and the output */
    FM_PH_BACK_FIRST,  /* the first layer's weight gradient with its step */
    FM_PH_BATCH,       /* the whole batch: gathering, the above, the governor */
    FM_PHASES
};
int fm_phase_read(double *out, int *cycles);

#define FM_DECLARE(real, sfx)                                                              \
    /* C[M,N] = beta*C + op(A) op(B), then the epilogue:                                   \
     *   bias (N) added and act applied (forward), or, when dact_src is given,             \
     *   C *= act'(dact_src) elementwise (dact_src is (M,N) with leading dim ldc).         \
     * A is (M,K) or, when transA, (K,M) with leading dim lda; B likewise (K,N)/(N,K).     \
     * Returns FM_OK, or FM_NOMEM when a packing buffer could not be allocated (C is then  \
     * incomplete). The layer kernels below return the same codes. */                    \
    int fm_gemm_##sfx(int transA, int transB, fm_int M, fm_int N, fm_int K,              \
                       const real *A, fm_int lda, const real *B, fm_int ldb, real beta,    \
                       real *C, fm_int ldc, const real *bias, int act, double slope,       \
                       const real *dact_src);                                              \
    void fm_gemm_ref_##sfx(int transA, int transB, fm_int M, fm_int N, fm_int K,          \
                           const real *A, fm_int lda, const real *B, fm_int ldb,           \
                           real beta, real *C, fm_int ldc);                                \
    /* out (B,O) = act(inp (B,I) . W (I,O) + bias (O)) */                                  \
    int fm_dense_forward_##sfx(real *out, const real *inp, const real *W,                \
                                const real *bias, fm_int B, fm_int I, fm_int O, int act,   \
                                double slope);                                             \
    /* dW (I,O) = inp^T . dout ; db (O) = column sums of dout ;                            \
     * dinp (B,I) = (dout . W^T) * act'(inp) when dinp != NULL (inp holds the previous     \
     * layer's activations, from which act' is computed). */                              \
    int fm_dense_backward_##sfx(real *dinp, real *dW, real *db, const real *dout,        \
                                 const real *inp, const real *W, fm_int B, fm_int I,       \
                                 fm_int O, int inp_act, double slope);                     \
    /* delta (B,O) = dC/dz of the output layer (per row, unscaled, times sw when given);   \
     * returns the batch's data loss sum_b w_b l(y_b, a_b) (not divided by S). */          \
    double fm_loss_grad_##sfx(real *delta, const real *a, const real *y, const real *sw,  \
                              fm_int B, fm_int O, int out_act, int loss);                  \
    /* One fused pass over P parameters with gradient g = (graw + alpha*w) / S:            \
     * SGD: v = momentum*v - lr*g; w += nesterov ? momentum*v - lr*g : v.                  \
     * Adam: m, v moments; w -= lr_t * m / (sqrt(v) + eps).                              \
     * Subnormal results are stored as zero (they would slow every later pass down).  */ \
    void fm_sgd_update_##sfx(real *w, real *vel, const real *graw, fm_int P,              \
                             double alpha, double S, double lr, double momentum,           \
                             int nesterov);                                                \
    void fm_adam_update_##sfx(real *w, real *m, real *v, const real *graw, fm_int P,      \
                              double alpha, double S, double lr_t, double beta1,           \
                              double beta2, double eps);                                   \
    /* One epoch of mini-batch training over the rows idx[0..n) (or 0..n when idx is NULL),\
     * batches of batch_size. *loss_out = sum over batches of (batch loss * batch rows),   \
     * the batch loss being scale*data/S + alpha/2 * sum ||W||^2 / S; *rows_done = the     \
     * rows of those batches. A batch whose sample weights sum to zero carries no          \
     * gradient (S = 0) and is skipped: no step, no loss. idx must hold indices in [0, n).  \
     * The GIL may be released around it; stop is polled once per batch. */                \
    int fm_epoch_train_##sfx(const fm_net *net, fm_optim *opt, const fm_data *data,       \
                             const fm_int *idx, fm_int batch_size, double loss_scale,      \
                             double *loss_out, fm_int *rows_done, fm_stop_fn stop,         \
                             void *stop_ctx);                                              \
    /* Up to n_epochs epochs of fm_epoch_train, epoch e over the rows                    \
     * idx[e*n .. (e+1)*n) (all in order when idx is NULL), each followed by the run's   \
     * bookkeeping (fm_run): losses[e] = the epoch's mean batch loss (loss_out/rows_done \
     * of fm_epoch_train), events[e] = enum fm_event. Returns FM_OK after n_epochs       \
     * epochs, FM_STOPPED when the rule stopped after epoch *epochs_done, or the status  \
     * of a failed epoch (FM_NONFINITE also when a weight became NaN or inf;             \
     * FM_ZERO_WEIGHT when no batch of it had weight), the parameters then as that epoch \
     * left them and *epochs_done the epochs before it. The one-thread-or-all trial runs \
     * over the batches of all epochs, so that short epochs get it too. */               \
    int fm_train_epochs_##sfx(const fm_net *net, fm_optim *opt, fm_run *run,              \
                              const fm_data *data, const fm_int *idx, fm_int n_epochs,     \
                              fm_int batch_size, double loss_scale, double *losses,        \
                              int *events, fm_int *epochs_done, fm_stop_fn stop,           \
                              void *stop_ctx);                                             \
    /* Loss (*loss_out) and gradient of the whole data set, as one batch of all n rows,   \
     * for L-BFGS and gradient checks: gW[l], gb[l] are filled. The rows are taken in      \
     * chunks (the workspace does not grow with n), the sums kept in the order of one      \
     * batch. Returns FM_OK, FM_NOMEM or FM_ZERO_WEIGHT. */                                 \
    int fm_loss_and_grad_##sfx(const fm_net *net, const fm_data *data, double alpha,      \
                               double loss_scale, void **gW, void **gb, double *loss_out); \
    /* out (n, O) = the network's output on the rows of data (predict); FM_OK or FM_NOMEM.\
     * The workspace holds a chunk of rows per thread, whatever n. With check_finite,    \
     * dense rows are checked as each chunk is taken (while they come into the cache for  \
     * its products), and FM_NONFINITE returned (out left unspecified) when one holds     \
     * NaN or inf. */                                                                      \
    int fm_forward_net_##sfx(const fm_net *net, const fm_data *data, real *out,          \
                             int check_finite);                                            \
    /* 1 when the n values of x are all finite (no NaN, no inf), else 0. */                \
    int fm_all_finite_##sfx(const real *x, fm_int n);

FM_DECLARE(float, f32)
FM_DECLARE(double, f64)

/* bfloat16 (float32's sign, exponent and top 7 mantissa bits). out[i] = x[i] rounded to
 * bfloat16, returned as the float32 of that value (its low 16 bits zero):
 *   - round to nearest, ties to even; values from the largest bfloat16 plus half its
 *     ulp upwards become inf (of their sign);
 *   - zero and subnormal inputs (below 2^-126) become zeros of their sign, as the
 *     AVX512_BF16 conversion does (its products treat subnormal operands as zero too):
 *     every path has the same operands;
 *   - NaN stays NaN: sign and top payload bits kept, made quiet (bit 22 set); inf stays.
 * out may be x. */
void fm_round_bf16_f32(const float *x, float *out, fm_int n);
/* fm_gemm_f32 with the operands rounded by fm_round_bf16_f32 as they are packed and
 * the products summed in float32 (the order of the sums depends on the ISA: the
 * AVX512_BF16 instruction adds two products at a time). Same arguments and epilogue. */
int fm_gemm_bf16_f32(int transA, int transB, fm_int M, fm_int N, fm_int K, const float *A,
                     fm_int lda, const float *B, fm_int ldb, float beta, float *C,
                     fm_int ldc, const float *bias, int act, double slope,
                     const float *dact_src);

#ifdef __cplusplus
}
#endif
#endif
