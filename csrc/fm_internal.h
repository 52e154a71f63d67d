/* fm_internal.h - what the kernel translation units share and the public header hides:
 * name mangling per element type and instruction set, the per-ISA tile sizes, the
 * dispatch table, and two small runtime services (thread count, packing buffers). */
#ifndef FM_INTERNAL_H
#define FM_INTERNAL_H
#include "fastmlp.h"

#define FM_CAT3_(a, b, c) a##_##b##_##c
#define FM_CAT3(a, b, c) FM_CAT3_(a, b, c)
#define FM_CAT2_(a, b) a##_##b
#define FM_CAT2(a, b) FM_CAT2_(a, b)
#define FM_STR_(a) #a
#define FM_STR(a) FM_STR_(a)

/* Register tile of the GEMM micro-kernel: MR rows by two vectors of columns. The vector
 * width follows the flags the translation unit was compiled with. */
#if defined(__AVX512F__)
#define FM_VBYTES 64
#define FM_MR 12 /* 24 accumulators of the 32 zmm registers */
#elif defined(__AVX2__)
#define FM_VBYTES 32
#define FM_MR 6 /* 12 accumulators of the 16 ymm registers */
#else
#define FM_VBYTES 16
#define FM_MR 6
#endif

/* How the GEMM micro-kernel reads A: a packed panel, or in place by rows (op(A) = A) or
 * by columns (op(A) = A^T). */
enum { FM_A_PACKED, FM_A_ROWS, FM_A_COLS };

/* The kernels' own code beside enum fm_compute: the bfloat16 products of an A whose
 * pairs pair_batch made (bf16.inc; AVX512_BF16 builds only). */
#define FM_BF16_PAIRED 0x100

/* Below this many elements pair_batch converts a batch on the calling thread. */
#define FM_PAIR_PAR_MIN 65536.0
/* pair_batch converts this many pairs of rows together, a vector of each in turn */
#define FM_PAIR_GROUP 4

/* Below this many flops a GEMM runs on the calling thread: a parallel region costs
 * a few microseconds on an idle machine, and a scheduler time slice on a busy one,
 * which small layers cannot repay. */
#define FM_PAR_MIN_FLOPS 2.0e6
/* Inside a unit of work the governor runs on all threads (runtime.c), the floor is lower:
 * the other threads are awake, waiting for the unit's next parallel region, and the
 * governor has timed the unit against one thread. A small layer's product on one thread
 * would leave them idle, and its output, written on one core, would be read from there
 * by the others. */
#define FM_PAR_MIN_FLOPS_IN_UNIT 0.5e6

/* The activation of layer l's output: the output unit for the last layer, else the
 * layer's hidden activation. */
static inline int fm_layer_act(const fm_net *net, fm_int l)
{
    if (l == net->n_layers - 1) return net->out_act;
    return net->hidden_acts ? net->hidden_acts[l] : net->hidden_act;
}

/* Phase timers (fastmlp.h, fm_phase_read), compiled in with FM_PHASE_TIMERS only:
 * FM_PHASE_START(t) declares the tick t; FM_PHASE(ph, t) adds the ticks since t to phase
 * ph and moves t to now. Without FM_PHASE_TIMERS both are nothing. */
#if defined(FM_PHASE_TIMERS)
uint64_t fm_phase_tick(void);
void fm_phase_add(int phase, uint64_t ticks);
#define FM_PHASE_START(t) uint64_t t = fm_phase_tick()
#define FM_PHASE(ph, t)                                                                   \
    do {                                                                                  \
        const uint64_t fm_now_ = fm_phase_tick();                                          \
        fm_phase_add((ph), fm_now_ - (t));                                                 \
        (t) = fm_now_;                                                                     \
    } while (0)
#else
#define FM_PHASE_START(t)
#define FM_PHASE(ph, t) ((void)0)
#endif

/* Dropout's random numbers (fastmlp.h, fm_optim): a counter-based generator, so that
 * whether a unit of a row is dropped depends on (seed, epoch, row, unit) only. The
 * mixer is SplitMix64's finaliser; fm_dropout_row hashes the first three, and
 * fm_dropout_uniform the unit into a double in [0, 1) (53 bits). tests/test_dropout.py
 * holds a NumPy copy of these to the bit. */
static inline uint64_t fm_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t fm_dropout_row(uint64_t seed, uint64_t epoch, uint64_t row)
{
    return fm_mix64(fm_mix64(seed ^ fm_mix64(epoch)) ^ row);
}

static inline double fm_dropout_uniform(uint64_t row_hash, uint64_t unit)
{
    return (double)(fm_mix64(row_hash ^ unit) >> 11) * 0x1.0p-53;
}

/* The kernels every instruction set provides, for both element types. */
#define FM_KERNELS(X)                                                                     \
    X(fm_gemm) X(fm_gemm_ref) X(fm_dense_forward) X(fm_dense_backward) X(fm_loss_grad)   \
    X(fm_sgd_update) X(fm_adam_update) X(fm_epoch_train) X(fm_train_epochs)              \
    X(fm_loss_and_grad)                                                                   \
    X(fm_forward_net) X(fm_all_finite)

/* ... and those of float32 only. */
#define FM_KERNELS_F32(X) X(fm_gemm_bf16) X(fm_round_bf16)

#define FM_SLOT(fn) __typeof__(fn##_f32) *fn##_f32; __typeof__(fn##_f64) *fn##_f64;
#define FM_SLOT_F32(fn) __typeof__(fn##_f32) *fn##_f32;
typedef struct {
    const char *name;
    FM_KERNELS(FM_SLOT)
    FM_KERNELS_F32(FM_SLOT_F32)
} fm_table;
#undef FM_SLOT_F32
#undef FM_SLOT

extern const fm_table fm_table_generic;
#if defined(FM_HAVE_X86_ISAS)
extern const fm_table fm_table_avx2;
extern const fm_table fm_table_avx512;
#if defined(FM_HAVE_AVX512BF16)
extern const fm_table fm_table_avx512_bf16;
#endif
#if defined(FM_HAVE_AMX)
extern const fm_table fm_table_amx_bf16;
#endif
#endif

const fm_table *fm_active(void);
int fm_omp_max_threads(void);
/* The threads a new parallel region would get: 1 inside one already, at most the
 * limit the calling thread set with fm_limit_threads (0: no limit). */
int fm_omp_threads(void);
void fm_limit_threads(int n);
/* The governor (runtime.c): whether a unit of work of a kind and size (its flops) runs
 * on one thread or all. fm_gov_begin sets the calling thread's limit for it (units too
 * small for a parallel region are left alone), fm_gov_end times it and lifts the limit. */
enum { FM_WORK_BATCH, FM_WORK_GRAD, FM_WORK_PREDICT, FM_WORK_KINDS };
typedef struct {
    void *slot;           /* the record of this kind and size; NULL: not timed */
    int all, trial;       /* on all threads; a trial of the way not preferred */
    int warmup;           /* on all threads after one: its time is not recorded */
    int aborted;          /* all threads overran: the rest ran on one */
    double flops, t0;
    double deadline;      /* when a unit on all threads gives up on them */
} fm_gov;
void fm_gov_begin(fm_gov *g, int kind, double flops);
/* The same for a part (flops) of a unit of work (whole flops) whose record it keeps: a
 * trial of one thread on the first rows of a predict or loss-and-gradient call. */
void fm_gov_begin_part(fm_gov *g, int kind, double whole, double flops);
/* Whether the next unit of a kind and size would run on one thread to learn its cost (its
 * first timing, or a trial while all threads are preferred). */
int fm_gov_one_to_learn(int kind, double flops);
void fm_gov_end(fm_gov *g);
/* Ends a unit without recording it (it stopped early: its time says nothing). */
void fm_gov_cancel(fm_gov *g);
/* 1 while the calling thread runs a unit of work on all threads. */
int fm_gov_all_threads(void);
/* A monotonic clock in seconds. */
double fm_seconds(void);
int fm_omp_thread(void);
/* The number of threads in the current team (1 outside a parallel region). */
int fm_omp_team(void);
/* A buffer of at least 'bytes', starting on a 64-byte line, owned by the calling thread,
 * reused across calls and freed when the thread exits; NULL when out of memory. */
void *fm_thread_buffer(size_t bytes);
/* The kernels' allocations (freed with free()); NULL when out of memory, or when the
 * test hook fm_fail_allocations_after says so. fm_malloc_aligned starts on 64 bytes. */
void *fm_malloc(size_t bytes);
void *fm_malloc_aligned(size_t bytes);

#endif
