/*
 * Per-window attention matmuls.  Swin's windows are tiny (N = 49 tokens, head
 * dim 32 for Swin-T), far below the size where a library sgemm call pays for
 * its packing and dispatch, so these two shapes get their own register-
 * blocked kernels (AVX-512 when the build targets it, plain loops
 * otherwise), plus naive double-accumulating twins for the tests.
 *
 *   attn_qk: s (N, ldp) = alpha * q (N, D; row stride ldq) @ k (N, D; ldk)^T
 *            (only columns 0..N-1 of s are written)
 *   attn_pv: out (N, D; ldo) = p (N, N; ldp) @ v (N, D; ldv)
 *
 * scratch for attn_qk holds attn_qk_scratch(N, D) floats.
 */
#ifndef QCAL_MODEL_ATTN_KERNELS_H
#define QCAL_MODEL_ATTN_KERNELS_H

#include <stddef.h>

typedef void (*attn_qk_fn)(float *s, int ldp, const float *q, int ldq,
			   const float *k, int ldk, int N, int D, float alpha,
			   float *scratch);
typedef void (*attn_pv_fn)(float *out, int ldo, const float *p, int ldp,
			   const float *v, int ldv, int N, int D);

/* Row stride the fast kernels want for s / p: N rounded up to 16. */
int attn_padded_n(int N);
size_t attn_qk_scratch(int N, int D);

void attn_qk_fast(float *s, int ldp, const float *q, int ldq, const float *k,
		  int ldk, int N, int D, float alpha, float *scratch);
void attn_pv_fast(float *out, int ldo, const float *p, int ldp, const float *v,
		  int ldv, int N, int D);
void attn_qk_naive(float *s, int ldp, const float *q, int ldq, const float *k,
		   int ldk, int N, int D, float alpha, float *scratch);
void attn_pv_naive(float *out, int ldo, const float *p, int ldp,
		   const float *v, int ldv, int N, int D);

#endif
