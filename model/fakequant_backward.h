/*
 * Backward of fake quantization (fakequant.h): the straight-through
 * estimator for the tensor and the LSQ gradient for the scale (Esser et al.,
 * "Learned Step Size Quantization", 2020).
 *
 * For y = (clamp(round(x/s) + z, qmin, qmax) - z) * s with q = round(x*(1/s)) + z:
 *
 *   dy/dx = 1 where qmin <= q <= qmax, else 0            (STE)
 *   dy/ds = (y - x) / s  = round(x/s) - x/s  inside the range,
 *           qmin - z below it, qmax - z above it           (LSQ)
 *
 * computed with exactly the float expressions of PyTorch's
 * _fake_quantize_learnable_per_{tensor,channel}_affine backward
 * (((q - z) * s - x) * (1/s) inside), so the masks agree bit for bit and the
 * scale gradients to float summation order.  Scale sums are accumulated in
 * double; LSQ multiplies them by the gradient scale g = 1/sqrt(N * qmax)
 * (fq_lsq_grad_factor), with N the elements per image of an activation and
 * the elements per output channel of a weight.
 *
 * Conventions: the tensor gradient is a mask, so the functions here write
 * dx (in place when dx == dy is allowed, as each says); scale gradients are
 * ACCUMULATED (+=) into the caller's dscale.  Nothing allocates.
 */
#ifndef QCAL_MODEL_FAKEQUANT_BACKWARD_H
#define QCAL_MODEL_FAKEQUANT_BACKWARD_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * One per-tensor fake-quant as a backward kernel sees it.  pre == NULL means
 * the point is not quantized: the backward is the identity.
 */
struct fq_bwd {
	const float *pre;  /* pre-quant tensor the forward saw (indexed like the tensor) */
	float scale, inv_scale, zero_point, qmin, qmax;
	bool learn;        /* accumulate the scale gradient */
};

/* Fill p for a per-tensor quantization of the tensor pre. */
void fq_bwd_init(struct fq_bwd *p, const float *pre, float scale,
		 int32_t zero_point, int64_t qmin, int64_t qmax, bool learn);

/*
 * Gradient through one element: returns dy where x was inside the range
 * (or is NaN, which then propagates), else 0; when p->learn adds
 * dy * dy/ds (without g) to *acc.
 */
static inline float fq_bwd_elem(const struct fq_bwd *p, float x, float dy,
				double *acc)
{
	float q = nearbyintf(x * p->inv_scale) + p->zero_point;
	bool below = q < p->qmin, above = q > p->qmax;
	if (p->learn)
		*acc += (double)dy * (below ? p->qmin - p->zero_point :
				      above ? p->qmax - p->zero_point :
				      ((q - p->zero_point) * p->scale - x) * p->inv_scale);
	return below || above ? 0.0f : dy;
}

/*
 * The same over a span, branch-free so the compiler vectorises it:
 * dx[i] = gradient through element i of x (n) for dy (dx may equal dy;
 * keep NULL or a byte per element, 0 giving dx 0 and no scale term).
 * Returns the span's LSQ sum (float lanes, summed in double).  p->pre is not
 * read: x is the span's own pre-quant values.
 */
static inline double fq_bwd_span(const struct fq_bwd *p, const float *restrict x,
				 float *dx, const float *dy, size_t n,
				 const uint8_t *keep)
{
	const float inv = p->inv_scale, s = p->scale, zp = p->zero_point;
	const float lo = p->qmin, hi = p->qmax, tlo = lo - zp, thi = hi - zp;
	float lanes[16] = { 0 };
	size_t i = 0;

#define FQ_BWD_LANE(l)                                                        \
	do {                                                                  \
		float xv = x[i + (l)];                                        \
		float g = keep && !keep[i + (l)] ? 0.0f : dy[i + (l)];        \
		float q = nearbyintf(xv * inv) + zp;                          \
		bool out_lo = q < lo, out_hi = q > hi;                        \
		float t = out_lo ? tlo : out_hi ? thi : ((q - zp) * s - xv) * inv; \
		dx[i + (l)] = out_lo || out_hi ? 0.0f : g;                    \
		lanes[(l)] += g * t;                                          \
	} while (0)
	for (; i + 16 <= n; i += 16)
		for (int l = 0; l < 16; l++)
			FQ_BWD_LANE(l);
	for (int l = 0; i + (size_t)l < n; l++)
		FQ_BWD_LANE(l);
#undef FQ_BWD_LANE
	if (!p->learn)
		return 0.0;
	double acc = 0.0;
	for (int l = 0; l < 16; l++)
		acc += lanes[l];
	return acc;
}

/*
 * QAT forward companion: pre[i] = x[i], then x[i] = fq(x[i]) (per tensor, as
 * fq_per_tensor), in one pass over x on `threads` threads.
 */
void fq_per_tensor_keep_mt(float *x, float *pre, size_t n, float scale,
			   int32_t zero_point, int64_t qmin, int64_t qmax,
			   int threads);

/* LSQ gradient scale g = 1/sqrt(n * qmax) (1/sqrt(n) if qmax < 1). */
double fq_lsq_grad_factor(size_t n, int64_t qmax);

/*
 * Per-tensor backward over n elements: dx[i] = dy[i] where x[i] was in
 * range, else 0 (dx may equal dy: in place).  keep (NULL or one byte per
 * element) marks elements that are data; dx is 0 where keep[i] == 0 and they
 * add nothing to the scale gradient (the masked positions of a shifted
 * window's softmax).  Returns sum_i dy[i] * dy_i/ds over the kept elements,
 * without g (0 when !p->learn).  Runs on `threads` OpenMP threads.
 */
double fq_bwd_tensor(float *dx, const float *dy, const struct fq_bwd *p,
		     size_t n, const uint8_t *keep, int threads);

/*
 * Weights, per tensor: dw (n) holds d loss / d w_q (the gradient with respect
 * to the fake-quantized weights the forward used) and becomes d loss / d w
 * in place.  *dscale += grad_factor * sum_i dw_q[i] * dw_q_i/ds.  Pass
 * dscale NULL for a fixed scale (STE only).
 */
void fq_weight_backward_per_tensor(float *dw, const float *w, size_t n,
				   float scale, int32_t zero_point,
				   int64_t qmin, int64_t qmax, float grad_factor,
				   float *dscale);

/*
 * Weights, per channel along axis 0 of a (channels, inner) tensor: as above
 * with channel c using scales[c] and zero_points[c] (NULL: all zero) and
 * dscales[c] += grad_factor * (channel c's sum).  The usual LSQ factor is
 * fq_lsq_grad_factor(inner, qmax).  dscales NULL: fixed scales.
 */
void fq_weight_backward_per_channel(float *dw, const float *w, int channels,
				    size_t inner, const float *scales,
				    const int32_t *zero_points, int64_t qmin,
				    int64_t qmax, float grad_factor,
				    float *dscales);

#endif
