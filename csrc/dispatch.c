/* dispatch.c - picks the instruction set at run time and forwards the public entry points
 * of fastmlp.h to it; the reference GEMM; the per-thread packing buffers. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fm_internal.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int fm_omp_max_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
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
    if (omp_in_parallel()) return 1;
    const int n = omp_get_max_threads();
    return fm_thread_limit > 0 && fm_thread_limit < n ? fm_thread_limit : n;
#else
    return 1;
#endif
}

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
        b->ptr = malloc(bytes);
        b->size = b->ptr ? bytes : 0;
    }
    return b->ptr;
}

/* ---- instruction set choice -------------------------------------------------------- */
static int fm_supported(const fm_table *t)
{
#if defined(FM_HAVE_X86_ISAS)
    __builtin_cpu_init();
    if (t == &fm_table_avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
    if (t == &fm_table_avx2)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return t == &fm_table_generic;
}

static const fm_table *const fm_tables[] = {
#if defined(FM_HAVE_X86_ISAS)
    &fm_table_avx512, &fm_table_avx2,
#endif
    &fm_table_generic,
};
#define FM_N_TABLES (sizeof(fm_tables) / sizeof(fm_tables[0]))

static const fm_table *fm_current = NULL;

int fm_set_isa(const char *name)
{
    for (size_t i = 0; i < FM_N_TABLES; i++) {
        if (strcmp(fm_tables[i]->name, name) == 0 && fm_supported(fm_tables[i])) {
            fm_current = fm_tables[i];
            return 0;
        }
    }
    return -1;
}

const fm_table *fm_active(void)
{
    if (fm_current) return fm_current;
    const char *forced = getenv("FASTMLP_ISA");
    if (!(forced && *forced && fm_set_isa(forced) == 0)) {
        for (size_t i = 0; i < FM_N_TABLES; i++)
            if (fm_supported(fm_tables[i])) { fm_current = fm_tables[i]; break; }
    }
    return fm_current;
}

const char *fm_isa(void) { return fm_active()->name; }

/* ---- the public entry points -------------------------------------------------------- */
#define FM_FORWARD(real, sfx)                                                              \
    void fm_gemm_##sfx(int tA, int tB, fm_int M, fm_int N, fm_int K, const real *A,        \
                       fm_int lda, const real *B, fm_int ldb, real beta, real *C,          \
                       fm_int ldc, const real *bias, int act, double slope,                \
                       const real *dsrc)                                                   \
    {                                                                                      \
        fm_active()->fm_gemm_##sfx(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc, bias,    \
                                   act, slope, dsrc);                                      \
    }                                                                                      \
    void fm_dense_forward_##sfx(real *out, const real *inp, const real *W,                \
                                const real *bias, fm_int B, fm_int I, fm_int O, int act,   \
                                double slope)                                              \
    {                                                                                      \
        fm_active()->fm_dense_forward_##sfx(out, inp, W, bias, B, I, O, act, slope);       \
    }                                                                                      \
    void fm_dense_backward_##sfx(real *dinp, real *dW, real *db, const real *dout,        \
                                 const real *inp, const real *W, fm_int B, fm_int I,       \
                                 fm_int O, int inp_act, double slope)                      \
    {                                                                                      \
        fm_active()->fm_dense_backward_##sfx(dinp, dW, db, dout, inp, W, B, I, O, inp_act, \
                                             slope);                                       \
    }                                                                                      \
    double fm_loss_grad_##sfx(real *delta, const real *a, const real *y, const real *sw,  \
                              fm_int B, fm_int O, int out_act, int loss)                   \
    {                                                                                      \
        return fm_active()->fm_loss_grad_##sfx(delta, a, y, sw, B, O, out_act, loss);      \
    }                                                                                      \
    void fm_sgd_update_##sfx(real *w, real *vel, const real *graw, fm_int P,              \
                             double alpha, double S, double lr, double momentum,           \
                             int nesterov)                                                 \
    {                                                                                      \
        fm_active()->fm_sgd_update_##sfx(w, vel, graw, P, alpha, S, lr, momentum,          \
                                         nesterov);                                        \
    }                                                                                      \
    void fm_adam_update_##sfx(real *w, real *m, real *v, const real *graw, fm_int P,      \
                              double alpha, double S, double lr_t, double beta1,           \
                              double beta2, double eps)                                    \
    {                                                                                      \
        fm_active()->fm_adam_update_##sfx(w, m, v, graw, P, alpha, S, lr_t, beta1, beta2,  \
                                          eps);                                            \
    }                                                                                      \
    int fm_epoch_train_##sfx(const fm_net *net, fm_optim *opt, const fm_data *data,       \
                             const fm_int *idx, fm_int batch_size, double loss_scale,      \
                             double *loss_out, fm_int *batches_done, fm_stop_fn stop,      \
                             void *stop_ctx)                                               \
    {                                                                                      \
        return fm_active()->fm_epoch_train_##sfx(net, opt, data, idx, batch_size,          \
                                                 loss_scale, loss_out, batches_done, stop, \
                                                 stop_ctx);                                \
    }                                                                                      \
    double fm_loss_and_grad_##sfx(const fm_net *net, const fm_data *data, double alpha,   \
                                  double loss_scale, void **gW, void **gb)                 \
    {                                                                                      \
        return fm_active()->fm_loss_and_grad_##sfx(net, data, alpha, loss_scale, gW, gb);  \
    }                                                                                      \
    int fm_forward_net_##sfx(const fm_net *net, const fm_data *data, real *out)           \
    {                                                                                      \
        return fm_active()->fm_forward_net_##sfx(net, data, out);                          \
    }                                                                                      \
    /* The reference GEMM: three plain loops, the yardstick of the fast one. */            \
    void fm_gemm_ref_##sfx(int tA, int tB, fm_int M, fm_int N, fm_int K, const real *A,    \
                           fm_int lda, const real *B, fm_int ldb, real beta, real *C,      \
                           fm_int ldc)                                                     \
    {                                                                                      \
        for (fm_int i = 0; i < M; i++)                                                     \
            for (fm_int j = 0; j < N; j++) {                                               \
                real s = 0;                                                                \
                for (fm_int k = 0; k < K; k++)                                             \
                    s += (tA ? A[k * lda + i] : A[i * lda + k]) *                          \
                         (tB ? B[j * ldb + k] : B[k * ldb + j]);                           \
                C[i * ldc + j] = (beta == 0 ? 0 : beta * C[i * ldc + j]) + s;              \
            }                                                                              \
    }

FM_FORWARD(float, f32)
FM_FORWARD(double, f64)
