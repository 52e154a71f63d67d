/* kernels_isa.c - one instantiation of every kernel for the instruction set this file is
 * compiled for (CMake builds it once per ISA with -DFM_ISA=<name> and that ISA's flags),
 * in float32 and float64, and the dispatch table that lists them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <float.h>
#include "fm_internal.h"
#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#ifndef FM_ISA
#error "compile with -DFM_ISA=generic|avx2|avx512|avx512_bf16|amx_bf16"
#endif

#define REAL float
#define SFX f32
#define FM_EXP_R expf
#define FM_TANH_R tanhf
#define FM_SQRT_R sqrtf
#define FM_EPS_R FLT_EPSILON
#define FM_MIN_R FLT_MIN
#define FM_IREAL int32_t
#define FM_VEXP 1 /* exp, logistic and tanh vectorised in float32 lanes */
#define FM_F32 1  /* the bfloat16 products (bf16.inc) are float32's */
#include "kernels.inc"
#undef REAL
#undef SFX
#undef FM_EXP_R
#undef FM_TANH_R
#undef FM_SQRT_R
#undef FM_EPS_R
#undef FM_MIN_R
#undef FM_IREAL
#undef FM_VEXP
#undef FM_F32

#define REAL double
#define SFX f64
#define FM_EXP_R exp
#define FM_TANH_R tanh
#define FM_SQRT_R sqrt
#define FM_EPS_R DBL_EPSILON
#define FM_MIN_R DBL_MIN
#define FM_IREAL int64_t
#define FM_VEXP 0 /* float64 keeps the C library's exp and tanh */
#define FM_F32 0
#include "kernels.inc"

#define FM_INIT(fn) .fn##_f32 = FM_CAT3(fn, f32, FM_ISA), .fn##_f64 = FM_CAT3(fn, f64, FM_ISA),
#define FM_INIT_F32(fn) .fn##_f32 = FM_CAT3(fn, f32, FM_ISA),
const fm_table FM_CAT2(fm_table, FM_ISA) = {.name = FM_STR(FM_ISA), FM_KERNELS(FM_INIT)
                                            FM_KERNELS_F32(FM_INIT_F32)};
