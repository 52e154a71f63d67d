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

/* ---- phase timers (FM_PHASE_TIMERS builds) ---------------------------------------- */
#if defined(FM_PHASE_TIMERS)
#if defined(__x86_64__)
#include <x86intrin.h>
#define FM_PHASE_CYCLES 1
uint64_t fm_phase_tick(void) { return __rdtsc(); }
#else
#define FM_PHASE_CYCLES 0
uint64_t fm_phase_tick(void) { return (uint64_t)(fm_seconds() * 1e9); }
#endif
static _Thread_local uint64_t fm_phase_ticks[FM_PHASES];
static _Thread_local fm_int fm_phase_batches;

void fm_phase_add(int phase, uint64_t ticks)
{
    fm_phase_ticks[phase] += ticks;
    fm_phase_batches += phase == FM_PH_BATCH;
}

int fm_phase_read(double *out, int *cycles)
{
    for (int p = 0; p < FM_PHASES; p++) {
        out[p] = (double)fm_phase_ticks[p];
        fm_phase_ticks[p] = 0;
    }
    out[FM_PHASES] = (double)fm_phase_batches;
    fm_phase_batches = 0;
    *cycles = FM_PHASE_CYCLES;
    return 1;
}
#else
int fm_phase_read(double *out, int *cycles)
{
    (void)out, (void)cycles;
    return 0;
}
#endif

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
/* The governor's unit on all threads the calling thread is running (its deadline is checked
 * whenever a parallel region is about to start), or NULL. */
static _Thread_local fm_gov *fm_gov_current;

void fm_limit_threads(int n) { fm_thread_limit = n; }

int fm_omp_threads(void)
{
#ifdef _OPENMP
    if (fm_forked || omp_in_parallel()) return 1;
    const int n = omp_get_max_threads();
    const int limit = fm_thread_limit > 0 && fm_thread_limit < n ? fm_thread_limit : n;
    if (limit > 1 && fm_gov_current && fm_seconds() > fm_gov_current->deadline) {
        fm_gov_current->aborted = 1; /* the rest of the unit on this thread */
        fm_thread_limit = 1;
        return 1;
    }
    return limit;
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

/* ---- one thread or all: the governor ------------------------------------------------
 * On a machine whose cores are busy with other work, a parallel region waits for a
 * scheduler time slice on every core it takes, and costs more than it saves; on a quiet
 * machine, large products run nearly twice as fast on two cores. So each unit of work
 * the kernels time (a training batch, a loss-and-gradient call, a predict call) runs on
 * one thread or on all as the governor decides: per calling thread, and per kind and
 * size of work, it keeps the recent seconds per flop of each way and runs the cheaper,
 * trying the other again now and then (after 4 units, then twice as many each time the
 * choice holds, up to 64; back to 4 when it flips), because the load changes. The
 * results are the same either way, bit for bit.
 * Two rules keep the trials of all threads honest and cheap:
 *   - warm-up: the first unit on all threads after units on one (or after a pause of
 *     FM_GOV_IDLE, such as the Python between two partial_fit calls) finds the other
 *     threads asleep (or not yet started) and pays for waking them (on a virtual machine, its
 *     idle cores too: a millisecond or more), which the unit after it does not: its
 *     time is not recorded, even when it overran its deadline, and the next unit runs
 *     on all threads too;
 *   - a deadline: a unit on all threads that has taken FM_GOV_ABORT times what one
 *     thread is expected to take (a core it waits for is busy with other work: each
 *     parallel region may wait a scheduler time slice) runs its remaining parallel
 *     regions on one thread, and its time is recorded as all threads' cost.
 * All threads are preferred when they are cheaper by FM_GOV_MARGIN (a tie goes to one
 * thread, which leaves the other cores to other work). The time of a trial, or of an
 * overrun unit, replaces the record of its way rather than joining its average: the
 * record of a way not run for a while is stale, and one overrun is enough to move back
 * to one thread.
 * And when one thread is preferred by far (all threads cost FM_GOV_CLEAR times as much:
 * a busy core), a trial of all threads costs a few units' time: the trials back off at
 * once to FM_GOV_CLEAR_PERIOD units apart, then further, up to FM_GOV_MAX_PERIOD_CLEAR.
 * (FM_GOV_MAX_PERIOD there, before: an L-BFGS fit of 60 units paid a trial in every
 * other fit, each a tenth of the fit's time, on the AMD EPYC of bench/contention.py.)
 * The same when all threads are preferred by far (one thread costs FM_GOV_CLEAR times as
 * much: a quiet machine): a trial of one thread then costs most of a unit, and a busy core
 * shows itself without one, in the overruns of all threads' deadline and in their own
 * record. (Every 64 units, the trials and the flips they caused cost bfloat16 mnist's
 * two-thread epochs 2-5% on the AMD EPYC.) */
#define FM_GOV_SIZES 24      /* size classes: log2 of the flops from FM_PAR_MIN_FLOPS */
#define FM_GOV_FIRST_TRIAL 4
#define FM_GOV_MAX_PERIOD 64
#define FM_GOV_ABORT 2.0
#define FM_GOV_MARGIN 1.1
#define FM_GOV_IDLE 1e-3 /* seconds between units after which the other threads sleep */
#define FM_GOV_CLEAR 1.5
#define FM_GOV_MAX_PERIOD_CLEAR 1024
#define FM_GOV_CLEAR_PERIOD 256

typedef struct {
    double cost[2];         /* seconds per flop, one thread [0] and all [1] */
    int seen[2];            /* whether each way has been timed */
    fm_int count, next_trial, period;
    fm_int runs[2], aborted; /* units run each way, and those aborted (fm_gov_stats) */
    int last_all;           /* the last unit ran on all threads to its end */
    double last_end;        /* when the last unit ended (fm_seconds) */
    int hold, hold_trial;   /* the next unit runs on all threads: the warm-up's sequel */
    int overruns;           /* overruns of all threads, when preferred, since they last
                               ran FM_GOV_MAX_PERIOD units in a row to their end */
    fm_int completed;       /* units on all threads in a row, preferred, run to their end */
} fm_gov_slot;

static _Thread_local fm_gov_slot fm_gov_slots[FM_WORK_KINDS][FM_GOV_SIZES];

/* Test hook: seconds added to each timed unit of one way, as if a busy core had delayed
 * it (fm_gov_test_delay). */
static double fm_gov_delay[2];

void fm_gov_test_delay(double one, double all)
{
    fm_gov_delay[0] = one;
    fm_gov_delay[1] = all;
}

static int fm_gov_all_cheaper(const fm_gov_slot *s)
{
    return FM_GOV_MARGIN * s->cost[1] < s->cost[0];
}

static fm_gov_slot *fm_gov_find(int kind, double flops)
{
    if (kind < 0 || kind >= FM_WORK_KINDS || !(flops >= FM_PAR_MIN_FLOPS)) return NULL;
    int size = ilogb(flops / FM_PAR_MIN_FLOPS);
    size = size < FM_GOV_SIZES ? size : FM_GOV_SIZES - 1;
    return &fm_gov_slots[kind][size];
}

/* The way the next unit of a record runs (1: all threads), and whether it is a trial. */
static int fm_gov_way(const fm_gov_slot *s, int *trial)
{
    *trial = 0;
    if (s->hold) {
        *trial = s->hold_trial;
        return 1; /* after a warm-up: the unit that is timed */
    }
    if (!s->seen[1]) return 1; /* each way once first */
    if (!s->seen[0]) return 0;
    const int all_cheaper = fm_gov_all_cheaper(s);
    *trial = s->count >= s->next_trial;
    return *trial ? !all_cheaper : all_cheaper;
}

int fm_gov_one_to_learn(int kind, double flops)
{
    const fm_gov_slot *s = fm_gov_find(kind, flops);
    int trial;
    return s && fm_omp_threads() > 1 && !fm_gov_way(s, &trial) &&
           (trial || !s->seen[0]);
}

void fm_gov_begin(fm_gov *g, int kind, double flops)
{
    fm_gov_begin_part(g, kind, flops, flops);
}

void fm_gov_begin_part(fm_gov *g, int kind, double whole, double flops)
{
    g->slot = NULL;
    fm_gov_slot *s = fm_gov_find(kind, whole); /* NULL: too small for threads */
    if (!s) return;
    const int nt = fm_omp_threads();
    if (nt <= 1) return;
    g->all = fm_gov_way(s, &g->trial);
    if (!s->hold && s->seen[1] && !s->seen[0]) { /* the first unit on one thread */
        s->period = FM_GOV_FIRST_TRIAL;
        s->next_trial = s->count + 1 + s->period;
    }
    g->slot = s;
    g->flops = flops;
    g->aborted = 0;
    fm_limit_threads(g->all ? nt : 1);
    g->t0 = fm_seconds();
    g->warmup = g->all && !s->hold && (!s->last_all || g->t0 - s->last_end > FM_GOV_IDLE);
    g->deadline = g->all && s->seen[0] ? g->t0 + FM_GOV_ABORT * s->cost[0] * flops : INFINITY;
    fm_gov_current = g->all ? g : NULL;
}

int fm_gov_all_threads(void)
{
    return fm_gov_current != NULL;
}

int fm_gov_preferred(int kind, double flops)
{
    const fm_gov_slot *s = fm_gov_find(kind, flops);
    if (!s || !s->seen[0] || !s->seen[1]) return -1;
    return fm_gov_all_cheaper(s);
}

int fm_gov_stats(int kind, double flops, fm_int runs[2], fm_int *aborted, double cost[2])
{
    const fm_gov_slot *s = fm_gov_find(kind, flops);
    *aborted = s ? s->aborted : 0;
    for (int w = 0; w < 2; w++) {
        runs[w] = s ? s->runs[w] : 0;
        cost[w] = s && s->seen[w] ? s->cost[w] : 0;
    }
    return s != NULL;
}

void fm_gov_cancel(fm_gov *g)
{
    if (!g->slot) return;
    fm_limit_threads(0);
    fm_gov_current = NULL;
    g->slot = NULL;
}

void fm_gov_end(fm_gov *g)
{
    fm_gov_slot *s = g->slot;
    if (!s) return;
    const double end = fm_seconds() + fm_gov_delay[g->all];
    const double c = (end - g->t0) / g->flops;
    fm_limit_threads(0);
    fm_gov_current = NULL;
    s->runs[g->all]++;
    s->aborted += g->aborted;
    s->count++;
    /* (a test delay that passes the deadline counts as overrunning it) */
    const int aborted = g->aborted || (g->all && end > g->deadline);
    s->last_all = g->all && !aborted;
    s->last_end = end - fm_gov_delay[g->all];
    if (g->warmup) { /* not recorded, overrun or not: the next unit is */
        s->hold = 1;
        s->hold_trial = g->trial;
        g->slot = NULL;
        return;
    }
    s->hold = 0;
    const int before = fm_gov_all_cheaper(s);
    /* a trial measures a way not run for a while: its record is stale, and is replaced */
    s->cost[g->all] = s->seen[g->all] && !aborted && !g->trial ? 0.5 * (s->cost[g->all] + c) : c;
    s->seen[g->all] = 1;
    const int clear = s->cost[1] > FM_GOV_CLEAR * s->cost[0] ||
                      s->cost[0] > FM_GOV_CLEAR * s->cost[1];
    const fm_int longest = clear ? FM_GOV_MAX_PERIOD_CLEAR : FM_GOV_MAX_PERIOD;
    if (g->trial) {
        const int after = fm_gov_all_cheaper(s);
        fm_int next = s->period * 2;
        if (clear && next < FM_GOV_CLEAR_PERIOD) next = FM_GOV_CLEAR_PERIOD;
        s->period = after != before ? FM_GOV_FIRST_TRIAL : next < longest ? next : longest;
        s->next_trial = s->count + s->period;
    } else if (aborted) {
        /* all threads were preferred and overran: tried again after 4 units (on a quiet
         * machine an overrun is a hiccup), then, when they overrun again as soon as they
         * are preferred, twice as late each time, up to FM_GOV_MAX_PERIOD (on a busy core
         * a trial of all threads can be lucky, when the sleeping thread is woken ahead of
         * the other work, and the units after it are not) */
        s->period = FM_GOV_FIRST_TRIAL << (s->overruns < 4 ? s->overruns : 4);
        s->next_trial = s->count + s->period;
        s->overruns++;
        s->completed = 0;
    } else if (g->all && ++s->completed >= FM_GOV_MAX_PERIOD) {
        /* all threads preferred, and running to their end for a while: a lucky streak on
         * a busy core is shorter (the back-off above is not undone by a few) */
        s->overruns = 0;
    }
    if (!g->trial && !aborted && fm_gov_all_cheaper(s) != before) {
        /* the way run, by its own record, lost the lead: the other is tried soon, not
         * after the long period the trials had reached (up to 1024 units) */
        s->period = FM_GOV_FIRST_TRIAL;
        s->next_trial = s->count + s->period;
    }
    g->slot = NULL;
}
