/*
 * Matrix multiply kernels chosen once per plan: OpenBLAS sgemm (rows split
 * across the plan's threads) with the register-blocked window-attention
 * kernels, or naive loop twins with double accumulation that tests compare
 * against.
 *
 *   C (M, N) = alpha * op(A) @ op(B) + beta * C, all row-major,
 *   op(A) = A (M, K) or A^T with A stored (K, M); same for B with (K, N).
 */
#ifndef QCAL_MODEL_GEMM_H
#define QCAL_MODEL_GEMM_H

#include <stdbool.h>

#include "model/attn_kernels.h"

typedef void (*swin_gemm_fn)(bool trans_a, bool trans_b, int M, int N, int K,
			     float alpha, const float *A, int lda,
			     const float *B, int ldb, float beta, float *C,
			     int ldc, int threads);

struct swin_kernels {
	const char *name;
	swin_gemm_fn gemm;
	attn_qk_fn attn_qk;  /* per-window q @ k^T */
	attn_pv_fn attn_pv;  /* per-window attn @ v */
};

/* OpenBLAS (single-threaded library, parallelised here by row blocks). */
const struct swin_kernels *swin_kernels_blas(void);
/* Triple loops, double accumulators: the trivially-correct reference. */
const struct swin_kernels *swin_kernels_naive(void);

#endif
