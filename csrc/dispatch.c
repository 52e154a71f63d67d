/* dispatch.c - picks the instruction set at run time (the best the CPU has, or the one
 * FASTMLP_ISA names) and forwards the public entry points of fastmlp.h to it. */
#include <stdlib.h>
#include <strings.h>
#include "fm_internal.h"
#if defined(FM_HAVE_AMX)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* ---- instruction set choice -------------------------------------------------------- */
#if defined(FM_HAVE_AMX)
/* Whether this process may use AMX-BF16 tiles: the CPU reports AMX-TILE and AMX-BF16
 * (CPUID.(7,0):EDX bits 24 and 22), and Linux grants the process the tile data state
 * (arch_prctl ARCH_REQ_XCOMP_PERM for XTILEDATA, feature 18; kernels before 5.16 lack
 * it, and refuse). Asked once; the grant is the whole process's, its threads' and its
 * forks' too. Elsewhere than Linux: no. */
static int fm_amx_permitted(void)
{
    static int answer = 0; /* 0 not asked yet, 1 yes, -1 no */
    int a = __atomic_load_n(&answer, __ATOMIC_ACQUIRE);
    if (a) return a > 0;
    a = -1;
#if defined(__linux__) && defined(SYS_arch_prctl)
    unsigned eax, ebx, ecx, edx;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx >> 24 & 1) && (edx >> 22 & 1) &&
        syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */) == 0)
        a = 1;
#endif
    __atomic_store_n(&answer, a, __ATOMIC_RELEASE);
    return a > 0;
}
#endif

static int fm_supported(const fm_table *t)
{
#if defined(FM_HAVE_X86_ISAS)
    __builtin_cpu_init();
#if defined(FM_HAVE_AMX)
    if (t == &fm_table_amx_bf16)
        return fm_supported(&fm_table_avx512_bf16) && fm_amx_permitted();
#endif
#if defined(FM_HAVE_AVX512BF16)
    if (t == &fm_table_avx512_bf16)
        return fm_supported(&fm_table_avx512) && __builtin_cpu_supports("avx512bf16");
#endif
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
#if defined(FM_HAVE_AMX)
    &fm_table_amx_bf16,
#endif
#if defined(FM_HAVE_AVX512BF16)
    &fm_table_avx512_bf16,
#endif
    &fm_table_avx512, &fm_table_avx2,
#endif
    &fm_table_generic,
};
#define FM_N_TABLES (sizeof(fm_tables) / sizeof(fm_tables[0]))

/* Read and written by any thread (a kernel call may race with set_isa): atomically. */
static const fm_table *fm_current = NULL;

static const fm_table *fm_find(const char *name)
{
    for (size_t i = 0; i < FM_N_TABLES; i++)
        if (strcasecmp(fm_tables[i]->name, name) == 0 && fm_supported(fm_tables[i]))
            return fm_tables[i];
    return NULL;
}

int fm_set_isa(const char *name)
{
    const fm_table *t = fm_find(name);
    if (!t) return -1;
    __atomic_store_n(&fm_current, t, __ATOMIC_RELEASE);
    return 0;
}

const fm_table *fm_active(void)
{
    const fm_table *t = __atomic_load_n(&fm_current, __ATOMIC_ACQUIRE);
    if (t) return t;
    const char *forced = getenv("FASTMLP_ISA");
    t = forced && *forced ? fm_find(forced) : NULL;
    for (size_t i = 0; !t && i < FM_N_TABLES; i++)
        if (fm_supported(fm_tables[i])) t = fm_tables[i];
    /* the first choice stands when two threads make it at once (they choose the same) */
    const fm_table *expected = NULL;
    if (!__atomic_compare_exchange_n(&fm_current, &expected, t, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE))
        t = expected;
    return t;
}

const char *fm_isa(void) { return fm_active()->name; }

const char *fm_isa_name(int i)
{
    return i >= 0 && (size_t)i < FM_N_TABLES && fm_supported(fm_tables[i]) ? fm_tables[i]->name
                                                                          : NULL;
}

int fm_isa_count(void) { return (int)FM_N_TABLES; }

/* ---- the public entry points -------------------------------------------------------- */
#define FM_FORWARD(real, sfx)                                                              \
    int fm_gemm_##sfx(int tA, int tB, fm_int M, fm_int N, fm_int K, const real *A,         \
                      fm_int lda, const real *B, fm_int ldb, real beta, real *C,           \
                      fm_int ldc, const real *bias, int act, double slope,                 \
                      const real *dsrc)                                                    \
    {                                                                                      \
        return fm_active()->fm_gemm_##sfx(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc, bias,    \
                                   act, slope, dsrc);                                      \
    }                                                                                      \
    int fm_dense_forward_##sfx(real *out, const real *inp, const real *W,                 \
                               const real *bias, fm_int B, fm_int I, fm_int O, int act,    \
                               double slope)                                               \
    {                                                                                      \
        return fm_active()->fm_dense_forward_##sfx(out, inp, W, bias, B, I, O, act, slope);       \
    }                                                                                      \
    int fm_dense_backward_##sfx(real *dinp, real *dW, real *db, const real *dout,         \
                                const real *inp, const real *W, fm_int B, fm_int I,        \
                                fm_int O, int inp_act, double slope)                       \
    {                                                                                      \
        return fm_active()->fm_dense_backward_##sfx(dinp, dW, db, dout, inp, W, B, I, O, inp_act, \
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
                             double *loss_out, fm_int *rows_done, fm_stop_fn stop,         \
                             void *stop_ctx)                                               \
    {                                                                                      \
        return fm_active()->fm_epoch_train_##sfx(net, opt, data, idx, batch_size,          \
                                                 loss_scale, loss_out, rows_done, stop,    \
                                                 stop_ctx);                                \
    }                                                                                      \
    int fm_train_epochs_##sfx(const fm_net *net, fm_optim *opt, fm_run *run,              \
                              const fm_data *data, const fm_int *idx, fm_int n_epochs,     \
                              fm_int batch_size, double loss_scale, double *losses,        \
                              int *events, fm_int *epochs_done, fm_stop_fn stop,           \
                              void *stop_ctx)                                              \
    {                                                                                      \
        return fm_active()->fm_train_epochs_##sfx(net, opt, run, data, idx, n_epochs,      \
                                                  batch_size, loss_scale, losses, events,  \
                                                  epochs_done, stop, stop_ctx);            \
    }                                                                                      \
    int fm_loss_and_grad_##sfx(const fm_net *net, const fm_data *data, double alpha,      \
                               double loss_scale, void **gW, void **gb, double *loss_out)  \
    {                                                                                      \
        return fm_active()->fm_loss_and_grad_##sfx(net, data, alpha, loss_scale, gW, gb,   \
                                                   loss_out);                              \
    }                                                                                      \
    int fm_forward_net_##sfx(const fm_net *net, const fm_data *data, real *out,           \
                             int check_finite)                                             \
    {                                                                                      \
        return fm_active()->fm_forward_net_##sfx(net, data, out, check_finite);            \
    }                                                                                      \
    int fm_all_finite_##sfx(const real *x, fm_int n)                                       \
    {                                                                                      \
        return fm_active()->fm_all_finite_##sfx(x, n);                                     \
    }                                                                                      \
    void fm_gemm_ref_##sfx(int tA, int tB, fm_int M, fm_int N, fm_int K, const real *A,    \
                           fm_int lda, const real *B, fm_int ldb, real beta, real *C,      \
                           fm_int ldc)                                                     \
    {                                                                                      \
        fm_active()->fm_gemm_ref_##sfx(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc);     \
    }

FM_FORWARD(float, f32)
FM_FORWARD(double, f64)

void fm_round_bf16_f32(const float *x, float *out, fm_int n)
{
    fm_active()->fm_round_bf16_f32(x, out, n);
}

int fm_gemm_bf16_f32(int tA, int tB, fm_int M, fm_int N, fm_int K, const float *A,
                     fm_int lda, const float *B, fm_int ldb, float beta, float *C, fm_int ldc,
                     const float *bias, int act, double slope, const float *dsrc)
{
    return fm_active()->fm_gemm_bf16_f32(tA, tB, M, N, K, A, lda, B, ldb, beta, C, ldc, bias,
                                         act, slope, dsrc);
}
