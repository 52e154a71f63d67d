/* runtime.c - the services the kernels of every instruction set share: OpenMP thread
 * counts and the per-thread limit, a monotonic clock, the allocator (with a test hook
 * that makes allocations fail), the per-thread packing buffers, and fork safety. */
#define _POSIX_C_SOURCE 200809L /* posix_memalign, clock_gettime, pthread_atfork */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include "fm_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- fork safety ---------------------------------------------------------------------
 * GNU libgomp keeps its worker threads in a pool that a child made by fork() does not
 * inherit, while its bookkeeping says they exist: the child's first parallel region of
 * more than one thread waits for them forever. A child therefore runs every kernel on
 * its calling thread (the results are the same bit for bit: work is never split over a
 * sum). */
static volatile int fm_forked = 0;

static void fm_after_fork_in_child(void) { fm_forked = 1; }

__attribute__((constructor)) static void fm_register_fork_handler(void)
{
    pthread_atfork(NULL, NULL, fm_after_fork_in_child);
}

int fm_in_forked_child(void) { return fm_forked; }

int fm_omp_max_threads(void)
{
#ifdef _OPENMP
    return fm_forked ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

double fm_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static _Thread_local int fm_thread_limit = 0;

void fm_limit_threads(int n) { fm_thread_limit = n; }

int fm_omp_threads(void)
{
#ifdef _OPENMP
    if (fm_forked || omp_in_parallel()) return 1;
    const int n = omp_get_max_threads();
    return fm_thread_limit > 0 && fm_thread_limit < n ? fm_thread_limit : n;
#else
    return 1;
#endif
}

int fm_max_threads(void) { return fm_omp_threads(); }

int fm_omp_thread(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

int fm_omp_team(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* ---- allocation ---------------------------------------------------------------------- */
/* Test hook: with a count c >= 0 set, the next c allocations succeed and every later one
 * fails, until the count is set back to -1 (so that every failure path can be tried). */
static fm_int fm_alloc_budget = -1;

void fm_fail_allocations_after(fm_int count) { __atomic_store_n(&fm_alloc_budget, count, __ATOMIC_SEQ_CST); }

static int fm_alloc_allowed(void)
{
    fm_int b = __atomic_load_n(&fm_alloc_budget, __ATOMIC_SEQ_CST);
    while (b >= 0) {
        if (b == 0) return 0;
        if (__atomic_compare_exchange_n(&fm_alloc_budget, &b, b - 1, 0, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST))
            return 1;
    }
    return 1;
}

void *fm_malloc(size_t bytes)
{
    return fm_alloc_allowed() ? malloc(bytes ? bytes : 1) : NULL;
}

void *fm_malloc_aligned(size_t bytes)
{
    void *p = NULL;
    if (!fm_alloc_allowed() || posix_memalign(&p, 64, bytes ? bytes : 64) != 0) return NULL;
    return p;
}

/* ---- per-thread packing buffers ---------------------------------------------------- */
typedef struct { void *ptr; size_t size; } fm_buf;
static pthread_key_t fm_buf_key;
static pthread_once_t fm_buf_once = PTHREAD_ONCE_INIT;

static void fm_buf_free(void *p)
{
    fm_buf *b = (fm_buf *)p;
    free(b->ptr);
    free(b);
}

static void fm_buf_init(void) { pthread_key_create(&fm_buf_key, fm_buf_free); }

void *fm_thread_buffer(size_t bytes)
{
    pthread_once(&fm_buf_once, fm_buf_init);
    fm_buf *b = (fm_buf *)pthread_getspecific(fm_buf_key);
    if (!b) {
        b = (fm_buf *)calloc(1, sizeof(fm_buf));
        if (!b) return NULL;
        pthread_setspecific(fm_buf_key, b);
    }
    if (b->size < bytes) {
        free(b->ptr);
        b->ptr = fm_malloc_aligned(bytes);
        b->size = b->ptr ? bytes : 0;
    }
    return b->ptr;
}

/* ---- one thread or all: the epoch's trial ------------------------------------------
 * On a machine whose cores are busy with other work, a parallel region waits for a
 * scheduler time slice and costs more than it saves. So every FM_TRIAL_PERIOD batches,
 * four batches alternate between one thread and all, and the rest of the period runs the
 * way whose quicker trial batch was quicker (the minimum, so that one interrupted batch
 * does not decide). The trial repeats because the load of the machine changes during an
 * epoch. The results are the same either way, bit for bit. */
#define FM_TRIAL_PERIOD ((fm_int)64)

void fm_trial_start(fm_trial *t, fm_int n_batches)
{
    t->nt = fm_omp_threads();
    t->on = t->nt > 1 && n_batches >= 16;
    t->timed = t->all = 0;
    t->t_one = t->t_all = INFINITY;
    t->t0 = 0;
}

void fm_trial_begin(fm_trial *t, fm_int batch)
{
    const fm_int phase = batch % FM_TRIAL_PERIOD;
    t->timed = t->on && phase < 4;
    t->all = (int)(phase % 2);
    if (t->timed) {
        if (phase == 0) t->t_all = t->t_one = INFINITY;
        fm_limit_threads(t->all ? t->nt : 1);
    } else if (t->on && phase == 4) {
        fm_limit_threads(t->t_one < t->t_all ? 1 : t->nt);
    }
    t->t0 = t->timed ? fm_seconds() : 0;
}

void fm_trial_end(fm_trial *t)
{
    if (!t->timed) return;
    const double s = fm_seconds() - t->t0;
    double *best = t->all ? &t->t_all : &t->t_one;
    *best = s < *best ? s : *best;
}

void fm_trial_stop(void) { fm_limit_threads(0); }
