/*
 * Fake quantization: x <- (clamp(round(x * (1/s)) + z, qmin, qmax) - z) * s.
 *
 * Rounding is half-to-even (nearbyintf in the default rounding mode) and the
 * scale is applied as a multiplication by the float32 reciprocal 1.0f/s,
 * exactly as torch.fake_quantize_per_tensor_affine and
 * torch.fake_quantize_per_channel_affine compute it, so results match PyTorch
 * bit for bit.  Clamping happens in float before any integer conversion, so
 * +-Inf saturates and NaN stays NaN (never undefined behaviour).
 */
#ifndef QCAL_MODEL_FAKEQUANT_H
#define QCAL_MODEL_FAKEQUANT_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"

static inline float fq_one(float x, float scale, float inv_scale, float zp,
			   float qmin, float qmax)
{
	float q = nearbyintf(x * inv_scale) + zp;
	q = q < qmin ? qmin : q;
	q = q > qmax ? qmax : q;
	return (q - zp) * scale;
}

/* In place, one scale for the whole tensor. */
void fq_per_tensor(float *x, size_t n, float scale, int32_t zero_point,
		   int64_t qmin, int64_t qmax);

/*
 * In place, per channel along axis 0 of a (channels, inner) tensor: channel c
 * uses scales[c] and zero_points[c] (zero_points may be NULL for all zero).
 */
void fq_per_channel(float *x, int channels, size_t inner, const float *scales,
		    const int32_t *zero_points, int64_t qmin, int64_t qmax);

/* fq_per_tensor split across `threads` OpenMP threads (same result). */
void fq_per_tensor_mt(float *x, size_t n, float scale, int32_t zero_point,
		      int64_t qmin, int64_t qmax, int threads);

/* out-of-place variant of fq_per_tensor (dst may equal src). */
void fq_per_tensor_to(float *dst, const float *src, size_t n, float scale,
		      int32_t zero_point, int64_t qmin, int64_t qmax);

#endif
