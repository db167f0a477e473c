/*
 * The elementary operations of Swin V1 on flat float buffers, llm.c style:
 * each takes its output first, then inputs, then explicit dimensions, and a
 * comment gives every shape.  Token tensors are channel-last (NHWC): a token
 * is C consecutive floats.  Windowed tensors are (B*nW, N, C) with windows in
 * row-major order over the (padded, shifted) grid and N = WS*WS tokens each.
 *
 * Forward ops never allocate: scratch comes from the plan.  `threads` is the
 * OpenMP team size for the op (1 = serial and bit-reproducible run to run).
 * Backward ops (swin_ops_backward.c) accumulate (+=) into gradient buffers.
 */
#ifndef QCAL_MODEL_SWIN_OPS_H
#define QCAL_MODEL_SWIN_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "model/gemm.h"

#define SWIN_LN_EPS 1e-5f

/* Geometry of one stage's windowing (torchvision semantics). */
struct swin_window_geom {
	int B, H, W, C;   /* token grid of the stage */
	int ws;           /* window side WS */
	int shift;        /* 0 or WS/2 */
	int Hp, Wp;       /* grid padded to multiples of WS */
	int nWh, nWw, nW; /* windows per image */
	int N;            /* tokens per window */
};

void swin_window_geom_init(struct swin_window_geom *g, int B, int H, int W,
			   int C, int ws, int shift);

/* out (B*T0, E) = conv_PxP/stride P(in (B, Cin, H, W)); cols scratch (B*T0, Cin*P*P) */
void op_patch_embed_forward(float *out, float *cols, const float *in,
			    const float *w, const float *b, int B, int Cin,
			    int H, int W, int P, int E,
			    const struct swin_kernels *k, int threads);

/* out (M, N) = in (M, K) @ w (N, K)^T + b (N) (b may be NULL) */
void op_linear_forward(float *out, const float *in, const float *w,
		       const float *b, int M, int K, int N,
		       const struct swin_kernels *k, int threads);

/* Fused LayerNorm over rows of C: out (M, C); mean, rstd (M). */
void op_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
			  const float *w, const float *b, int M, int C,
			  int threads);

/*
 * All decomposed LayerNorm steps in one pass, with exactly the arithmetic of
 * the step-by-step ops below (for observing, where nothing is quantized
 * between the steps).
 */
void op_layernorm_steps_forward(float *mean, float *centered, float *square,
				float *var, float *rstd, float *normalized,
				float *out, const float *in, const float *w,
				const float *b, int M, int C, int threads);

/* Decomposed LayerNorm steps (the integer model's ops). */
void op_row_mean(float *mean, const float *in, int M, int C, int threads);
/* centered (M, C) = in - mean (per row) */
void op_row_sub(float *centered, const float *in, const float *mean, int M,
		int C, int threads);
void op_square(float *out, const float *in, size_t n, int threads);
/* rstd = 1 / sqrt(var + eps) */
void op_rsqrt_eps(float *rstd, const float *var, size_t n, float eps, int threads);
/* out (M, C) = in * s (per row) */
void op_row_scale(float *out, const float *in, const float *s, int M, int C,
		  int threads);
/* out (M, C) = in * w + b (per channel) */
void op_affine(float *out, const float *in, const float *w, const float *b,
	       int M, int C, int threads);

/* xw (B*nW, N, C) = windows of the zero-padded, rolled (by -shift) x (B, H, W, C) */
void op_window_partition(float *xw, const float *x,
			 const struct swin_window_geom *g, int threads);
/* Fused LayerNorm + window partition (inference float path):
 * xw (B*nW, N, C) = windows of LayerNorm(x), zero for padding tokens. */
void op_layernorm_windows_forward(float *xw, const float *x, const float *w,
				  const float *b, const struct swin_window_geom *g,
				  int threads);
/* out (B, H, W, C) = res + un-window/un-roll/crop of y (B*nW, N, C); out may be res */
void op_window_reverse_add(float *out, const float *res, const float *y,
			   const struct swin_window_geom *g, int threads);

/*
 * Shifted-window keep mask: keep (nW, N, N) is 1 where query i and key j lie
 * in the same region of the rolled grid (torchvision's attn_mask == 0).
 */
void op_shift_keep_mask(uint8_t *keep, const struct swin_window_geom *g);

/* bias (NH, N, N) = table[index[i*N + j], h] */
void op_gather_rel_bias(float *bias, const float *table, const int32_t *index,
			int NH, int N);

/* q, k, v (BW, N, C) from qkv (BW, N, 3C) where BW = B*nW */
void op_split_qkv(float *q, float *k, float *v, const float *qkv, size_t rows,
		  int C, int threads);

/*
 * Fused window attention for the float path: for every window and head,
 * softmax(q_h k_h^T + bias_h + mask_bias) @ v_h, written as av (BW, N, C)
 * with heads concatenated.  q, k, v are (BW, N, ld) row views (ld = C for
 * split tensors, 3C when reading straight from the qkv projection); q is
 * already scaled.  mask_bias (nW, N, N) holds 0 / -inf, or is NULL.
 * scratch holds threads * op_window_attention_scratch(N, D) floats.
 */
size_t op_window_attention_scratch(int N, int D);
void op_window_attention_forward(float *av, float *scratch, const float *q,
				 const float *k, const float *v, int ld,
				 const float *bias, const float *mask_bias, int BW,
				 int nW, int NH, int N, int C,
				 const struct swin_kernels *kk, int threads);
/* bias[i] = 0 where keep[i], -inf elsewhere (the fused path's shift mask). */
void op_shift_mask_bias(float *bias, const uint8_t *keep, size_t n);

/* x[r * ld + j] *= s for the first cols columns of rows rows. */
void op_scale_columns(float *x, size_t rows, int ld, int cols, float s,
		      int threads);

/* Per-(window, head) matmuls of the decomposed path. */
/* qk (BW, NH, N, N) = q_h @ k_h^T; scratch: threads * attn_qk_scratch(N, D) */
void op_attn_qk(float *qk, float *scratch, const float *q, const float *k,
		int BW, int NH, int N, int C, const struct swin_kernels *kk,
		int threads);
/* av (BW, N, C) = attn_h (N, N) @ v_h */
void op_attn_av(float *av, const float *attn, const float *v, int BW, int NH,
		int N, int C, const struct swin_kernels *kk, int threads);
/* logits (BW, NH, N, N) = qk + bias (NH, N, N) broadcast */
void op_add_bias_heads(float *logits, const float *qk, const float *bias,
		       int BW, int NH, int N, int threads);

/*
 * Decomposed softmax over rows of N with optional keep mask (nW, N, N):
 *   sub_max = x - max over kept j (0 where masked)
 *   exp = exp(sub_max) (0 where masked); sum = row sum; recip = 1/sum;
 *   out = exp * recip.
 * Split into steps so quantization points can act between them.  Rows are
 * (BW, NH, N) with window index (row / (NH*N)) % nW selecting the mask.
 */
void op_softmax_sub_max(float *sub_max, const float *x, const uint8_t *keep,
			int BW, int nW, int NH, int N, int threads);
void op_softmax_exp(float *e, const float *sub_max, const uint8_t *keep,
		    int BW, int nW, int NH, int N, int threads);
void op_row_sum(float *sum, const float *in, size_t rows, int N, int threads);
/* All decomposed softmax steps in one pass (observing), same arithmetic. */
void op_softmax_steps_forward(float *sub_max, float *e, float *sum, float *recip,
			      float *out, const float *x, const uint8_t *keep,
			      int BW, int nW, int NH, int N, int threads);
void op_reciprocal(float *out, const float *in, size_t n, int threads);

/* Expand keep (nW, N, N) to the full (B*nW, NH, N, N) layout of attention tensors. */
void op_expand_keep(uint8_t *full, const uint8_t *keep, int B, int nW, int NH,
		    int N);

void op_scale(float *out, const float *in, float s, size_t n, int threads);
void op_add(float *out, const float *a, const float *b, size_t n, int threads);
/* Exact (erf) GELU. */
void op_gelu_forward(float *out, const float *in, size_t n, int threads);

/*
 * Float-path MLP with residual, row-chunked so the hidden activations never
 * leave cache: out (M, C) = res + fc2(GELU(fc1(in))).  w1 (Hd, C), w2 (C, Hd);
 * scratch holds threads * op_mlp_chunk_rows(Hd) * Hd floats.  out may not
 * alias in; it may alias res.
 */
int op_mlp_chunk_rows(int hidden);
void op_mlp_residual_forward(float *out, const float *res, const float *in,
			     const float *w1, const float *b1, const float *w2,
			     const float *b2, int M, int C, int Hd,
			     float *scratch, const struct swin_kernels *kk,
			     int threads);

/* Patch merging gather: out (B, ceil(H/2), ceil(W/2), 4C) in torchvision's
 * concatenation order x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]. */
void op_merge_gather(float *out, const float *in, int B, int H, int W, int C,
		     int threads);

/* out (B, C) = mean over T tokens of in (B, T, C) */
void op_avgpool_forward(float *out, const float *in, int B, int T, int C);

#endif
