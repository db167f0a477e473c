/*
 * Backward kernels of Swin V1, one beside each forward op of swin_ops.h,
 * llm.c style: explicit functions on flat float buffers, the gradient of the
 * op's output (d-prefixed) and the activations the forward saved in, every
 * shape in a comment.
 *
 * EVERY BACKWARD HERE ACCUMULATES (+=) INTO ITS GRADIENT OUTPUTS (dx, dw,
 * db, ...): the caller zeroes them once, and a tensor consumed twice (a
 * residual, the three projections of q, k, v) simply receives both
 * contributions.  Gradient outputs are never aliased with inputs unless a
 * function says so.  Any gradient output may be NULL when it is not wanted
 * (the work for it is then skipped) where the comment says "(may be NULL)".
 *
 * Nothing allocates: per-thread scratch comes from the caller, sized by the
 * *_scratch() functions.  `threads` is the OpenMP team size; parallel loops
 * split rows, windows or output columns so that no two threads write the
 * same element (weight-gradient reductions split over columns, attention
 * bias reductions use per-thread partials summed in thread order).
 *
 * Two fused kernels serve the decomposed (quantization-aware) path:
 * op_layernorm_steps_backward and op_attention_steps_backward walk the
 * LayerNorm and softmax steps exactly as the forward computed them, with
 * the fake-quant backward (fakequant_backward.h) of every point in between;
 * the step-by-step functions below them are their trivially-correct twins.
 */
#ifndef QCAL_MODEL_SWIN_OPS_BACKWARD_H
#define QCAL_MODEL_SWIN_OPS_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

#include "model/fakequant_backward.h"
#include "model/gemm.h"
#include "model/swin_ops.h"

/*
 * Linear: out (M, N) = in (M, K) @ w (N, K)^T + b (N).
 *   din (M, K) += dout @ w;  dw (N, K) += dout^T @ in;  db (N) += sum_rows dout.
 * din, dw, db may be NULL.  GEMMs go through the kernel table k.
 */
void op_linear_backward(float *din, float *dw, float *db, const float *dout,
			const float *in, const float *w, int M, int K, int N,
			const struct swin_kernels *k, int threads);

/* db (N) += column sums of dout (M, N). */
void op_bias_backward(float *db, const float *dout, int M, int N, int threads);

/*
 * Patch embedding (conv P x P, stride P, via im2col):
 *   dout (B*T0, E), cols (B*T0, Cin*P*P) the forward's im2col, w (E, Cin, P, P)
 *   dw (E, Cin*P*P) += dout^T @ cols; db (E) += column sums;
 *   din (B, Cin, H, W) += col2im(dout @ w) (may be NULL; then dcols is unused).
 * dcols: scratch of B*T0*Cin*P*P floats (overwritten).  Pixels past the last
 * whole patch (H, W not multiples of P) receive nothing.
 */
void op_patch_embed_backward(float *din, float *dw, float *db, float *dcols,
			     const float *dout, const float *cols, const float *w,
			     int B, int Cin, int H, int W, int P, int E,
			     const struct swin_kernels *k, int threads);

/*
 * Fused LayerNorm over rows of C (forward op_layernorm_forward):
 *   in (M, C), mean (M), rstd (M), w (C), dout (M, C)
 *   din (M, C) += rstd * (dn - mean(dn) - n * mean(dn * n)), dn = dout * w,
 *                 n = (in - mean) * rstd;
 *   dw (C) += sum_rows dout * n;  db (C) += sum_rows dout  (dw, db may be NULL).
 * One pass over the rows; dw, db gather in per-thread partials (float over
 * 64 rows at a time, then double).
 * scratch: threads * op_layernorm_backward_scratch(C) floats.
 */
size_t op_layernorm_backward_scratch(int C);
void op_layernorm_backward(float *din, float *dw, float *db, const float *dout,
			   const float *in, const float *mean, const float *rstd,
			   const float *w, float *scratch, int M, int C, int threads);

/* Window partition (forward op_window_partition):
 *   dxw (B*nW, N, C) -> dx (B, H, W, C) += the unpadded, un-rolled tokens. */
void op_window_partition_backward(float *dx, const float *dxw,
				  const struct swin_window_geom *g, int threads);

/*
 * Window reverse + residual (forward op_window_reverse_add):
 *   dout (B, H, W, C) -> dres (B, H, W, C) += dout (may be NULL);
 *   dy (B*nW, N, C) += windows of dout (padding tokens receive nothing).
 */
void op_window_reverse_add_backward(float *dres, float *dy, const float *dout,
				    const struct swin_window_geom *g, int threads);

/* Relative position bias gather (forward op_gather_rel_bias):
 *   dbias (NH, N, N) -> dtable ((2WS-1)^2, NH) += scatter by index (N*N). */
void op_gather_rel_bias_backward(float *dtable, const float *dbias,
				 const int32_t *index, int NH, int N);

/* qkv split (forward op_split_qkv): dq, dk, dv (rows, C) -> dqkv (rows, 3C). */
void op_split_qkv_backward(float *dqkv, const float *dq, const float *dk,
			   const float *dv, size_t rows, int C, int threads);

/*
 * Fused window attention (forward op_window_attention_forward, float path):
 * for every window bw and head h, with S = q_h k_h^T + bias_h + mask,
 * P = softmax(S) recomputed in scratch:
 *   dv_h += P^T @ dav_h;  dS = P * (dP - rowsum(dP * P)), dP = dav_h @ v_h^T;
 *   dq_h += q_scale * (dS @ k_h);  dk_h += dS^T @ q_h;  dbias_h += sum_bw dS.
 * q (already multiplied by q_scale), k, v: (BW, N, ld) row views as in the
 * forward; dq, dk, dv: (BW, N, ld_d) (ld_d = C for split buffers, 3C to write
 * straight into a dqkv (BW, N, 3C) buffer); dav (BW, N, C); bias (NH, N, N);
 * mask_bias (nW, N, N) of 0 / -inf or NULL; dbias (NH, N, N) (may be NULL).
 * Masked keys get exactly zero gradient.  scratch: threads *
 * op_window_attention_backward_scratch(N, D, NH) floats.
 */
size_t op_window_attention_backward_scratch(int N, int D, int NH);
void op_window_attention_backward(float *dq, float *dk, float *dv, int ld_d,
				  float *dbias, float *scratch, const float *dav,
				  const float *q, const float *k, const float *v,
				  int ld, const float *bias, const float *mask_bias,
				  float q_scale, int BW, int nW, int NH, int N,
				  int C, const struct swin_kernels *kk, int threads);

/* Softmax over rows of N: y = softmax(x).  dx (rows, N) += y * (dy - sum(dy * y)). */
void op_softmax_backward(float *dx, const float *dy, const float *y,
			 size_t rows, int N, int threads);

/*
 * Exact GELU, y = x Phi(x): in (n) the forward's input, out (n) its output
 * (before any quantization), from which Phi(x) = y / x is taken instead of
 * a second erf.  din += dout * (Phi(x) + x phi(x)).
 */
void op_gelu_backward(float *din, const float *dout, const float *in,
		      const float *out, size_t n, int threads);
/* The one in-place exception: d (n) *= GELU'(in), for a caller that has no
 * further use for the gradient of the GELU output (saves a hidden-sized
 * buffer). */
void op_gelu_backward_inplace(float *d, const float *in, const float *out,
			      size_t n, int threads);

/* Patch merging gather (forward op_merge_gather):
 *   dout (B, ceil(H/2), ceil(W/2), 4C) -> din (B, H, W, C) (padding dropped). */
void op_merge_gather_backward(float *din, const float *dout, int B, int H,
			      int W, int C, int threads);

/* Average pool: dout (B, C) -> din (B, T, C) += dout / T. */
void op_avgpool_backward(float *din, const float *dout, int B, int T, int C,
			 int threads);

/* out = a + b: da, db (n) += dout (either may be NULL). */
void op_add_backward(float *da, float *db, const float *dout, size_t n,
		     int threads);
/* out = in * s: din (n) += s * dout. */
void op_scale_backward(float *din, const float *dout, float s, size_t n,
		       int threads);

/* ---- decomposed steps (the integer model's ops), trivially correct ---- */

/* mean (M) = row mean of in (M, C): din += dmean / C. */
void op_row_mean_backward(float *din, const float *dmean, int M, int C,
			  int threads);
/* centered (M, C) = in - mean: din += dcentered; dmean (M) -= row sums. */
void op_row_sub_backward(float *din, float *dmean, const float *dcentered,
			 int M, int C, int threads);
/* out = in^2 (n): din += 2 * in * dout. */
void op_square_backward(float *din, const float *dout, const float *in,
			size_t n, int threads);
/* rstd = 1/sqrt(var + eps) (n): dvar += drstd * -0.5 * rstd^3, rstd
 * recomputed from var exactly as the forward computed it. */
void op_rsqrt_eps_backward(float *dvar, const float *drstd, const float *var,
			   size_t n, float eps, int threads);
/* out (M, C) = in * s (M): din += dout * s; ds (M) += row sums of dout * in
 * (din, ds may be NULL). */
void op_row_scale_backward(float *din, float *ds, const float *dout,
			   const float *in, const float *s, int M, int C,
			   int threads);
/* out (M, C) = in * w + b (C): din += dout * w; dw += sum_rows dout * in;
 * db += sum_rows dout (din, dw, db may be NULL). */
void op_affine_backward(float *din, float *dw, float *db, const float *dout,
			const float *in, const float *w, int M, int C,
			int threads);
/* sum (rows) = row sums of in (rows, N): din += dsum broadcast. */
void op_row_sum_backward(float *din, const float *dsum, size_t rows, int N,
			 int threads);
/* out = 1 / in (n): din += -dout / in^2. */
void op_reciprocal_backward(float *din, const float *dout, const float *in,
			    size_t n, int threads);
/*
 * sub_max (BW, NH, N, N) = x - max over kept j of x (0 where masked), keep
 * (nW, N, N) or NULL: dx += dsub at kept positions, and the max's gradient
 * -sum_kept(dsub) goes to the first kept position holding the maximum (as
 * the forward's max picked it).  x is the forward's input.
 */
void op_softmax_sub_max_backward(float *dx, const float *dsub, const float *x,
				 const uint8_t *keep, int BW, int nW, int NH,
				 int N, int threads);
/* e = exp(sub_max), 0 where masked: dsub += dexp * e (e (n) is the forward's
 * unquantized output, so masked positions get exactly 0). */
void op_softmax_exp_backward(float *dsub, const float *dexp, const float *e,
			     size_t n, int threads);
/* logits (BW, NH, N, N) = qk + bias (NH, N, N): dqk += dlogits;
 * dbias += sum over windows (either may be NULL). */
void op_add_bias_heads_backward(float *dqk, float *dbias, const float *dlogits,
				int BW, int NH, int N, int threads);
/*
 * qk (BW, NH, N, N) = q_h @ k_h^T with q, k (BW, N, C), D = C / NH:
 *   dq_h += dqk @ k_h;  dk_h += dqk^T @ q_h.
 * scratch: threads * op_attn_matmul_backward_scratch(N, D) floats.
 */
size_t op_attn_matmul_backward_scratch(int N, int D);
void op_attn_qk_backward(float *dq, float *dk, const float *dqk, const float *q,
			 const float *k, float *scratch, int BW, int NH, int N,
			 int C, const struct swin_kernels *kk, int threads);
/* av (BW, N, C) = attn_h (N, N) @ v_h: dattn_h += dav_h @ v_h^T;
 * dv_h += attn_h^T @ dav_h (dattn, dv may be NULL). */
void op_attn_av_backward(float *dattn, float *dv, const float *dav,
			 const float *attn, const float *v, float *scratch,
			 int BW, int NH, int N, int C,
			 const struct swin_kernels *kk, int threads);

/* ---- fused decomposed kernels with fake-quant backward ---- */

/* The seven LayerNorm points in forward order. */
enum { LN_MEAN, LN_CENTERED, LN_SQUARE, LN_VAR, LN_RSTD, LN_NORMALIZED,
       LN_OUT, LN_POINTS };

/*
 * Decomposed LayerNorm (forward: layernorm() step by step) with the
 * fake-quant backward of each step's point fq[LN_*] (pre tensors indexed
 * like the step's tensor: (M) or (M, C)).  Buffers hold the values the
 * forward stored (after quantization): centered, normalized (M, C); var,
 * rstd (M).  dout (M, C) is the gradient of the LN output point (after its
 * fake quant):
 *   din (M, C) += d loss / d in;  dw, db (C) += affine gradients;
 *   dscale[p] += sum over elements of dy * dy/ds of point p (no g) for the
 *   points with fq[p].learn (dscale has LN_POINTS entries, or is NULL).
 * scratch: threads * op_layernorm_steps_backward_scratch(C) floats.
 */
size_t op_layernorm_steps_backward_scratch(int C);
void op_layernorm_steps_backward(float *din, float *dw, float *db,
				 double *dscale, const float *dout,
				 const float *centered, const float *var,
				 const float *rstd, const float *normalized,
				 const float *w, const struct fq_bwd *fq,
				 float *scratch, int M, int C, int threads);

/*
 * The MLP's GELU between its two points (decomposed path), one pass:
 * d (n) holds d loss / d gelu (the quantized GELU output) and becomes
 * d loss / d fc1 (before fc1's fake quant):
 *   d = STE_fc1( STE_gelu(d) * GELU'(fc1) )
 * fc1 (n) the stored fc1 (GELU's input), gelu_out (n) the unquantized GELU
 * output; fq_gelu, fq_fc1 the two points (pre NULL: float).  acc[0], acc[1]
 * += their LSQ sums (no g) when learnable.  The in-place exception again.
 */
void op_gelu_steps_backward(float *d, const float *fc1, const float *gelu_out,
			    const struct fq_bwd *fq_gelu,
			    const struct fq_bwd *fq_fc1, double acc[2], size_t n,
			    int threads);

/* The attention points handled by op_attention_steps_backward, forward order. */
enum { AT_QK, AT_LOGITS, AT_SUB_MAX, AT_EXP, AT_SUM, AT_RECIP, AT_OUT,
       AT_POINTS };

/*
 * Decomposed attention core, per window bw and head h, from the gradient of
 * av back to q_scaled and k (forward: op_attn_qk, op_add_bias_heads,
 * op_softmax_* steps, op_attn_av), with the fake-quant backward of the
 * points fq[AT_*] between the steps:
 *   dattn = dav_h @ v_h^T; dv_h += attn^T @ dav_h;
 *   attn = exp * recip; recip = 1/sum; sum = row sum of exp;
 *   exp = e^sub_max (0 masked); sub_max = logits - max_kept(logits);
 *   logits = qk + bias; qk = q_scaled_h @ k_h^T.
 * Tensors (BW, NH, N, N): logits, exp, attn as stored; exp_pre the
 * unquantized exp (the exp point's saved tensor, or exp itself when that
 * point is not quantized).  (BW, NH, N): sum, recip as stored.  q_scaled, k,
 * v, dav (BW, N, C).  keep (nW, N, N) or NULL.
 *   dq_scaled, dk, dv (BW, N, C) +=;  dbias (NH, N, N) += sum over windows
 *   of d loss / d logits (before the bias point's own fake quant);
 *   dscale[p] += LSQ sums (no g) for fq[p].learn (dscale may be NULL).
 * scratch: threads * op_attention_steps_backward_scratch(N, D, NH) floats.
 */
size_t op_attention_steps_backward_scratch(int N, int D, int NH);
void op_attention_steps_backward(float *dq_scaled, float *dk, float *dv,
				 float *dbias, double *dscale, const float *dav,
				 const float *q_scaled, const float *k,
				 const float *v, const float *logits,
				 const float *exp, const float *exp_pre,
				 const float *sum, const float *recip,
				 const float *attn, const uint8_t *keep,
				 const struct fq_bwd *fq, float *scratch,
				 int BW, int nW, int NH, int N, int C,
				 const struct swin_kernels *kk, int threads);

#endif
