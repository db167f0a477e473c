/* Fake-quant kernels; see fakequant.h for the exact arithmetic. */
#include "model/fakequant.h"

void fq_per_tensor_to(float *dst, const float *src, size_t n, float scale,
		      int32_t zero_point, int64_t qmin, int64_t qmax)
{
	const float inv = 1.0f / scale, zp = (float)zero_point;
	const float lo = (float)qmin, hi = (float)qmax;

	for (size_t i = 0; i < n; i++)
		dst[i] = fq_one(src[i], scale, inv, zp, lo, hi);
}

void fq_per_tensor(float *x, size_t n, float scale, int32_t zero_point,
		   int64_t qmin, int64_t qmax)
{
	fq_per_tensor_to(x, x, n, scale, zero_point, qmin, qmax);
}

void fq_per_tensor_mt(float *x, size_t n, float scale, int32_t zero_point,
		      int64_t qmin, int64_t qmax, int threads)
{
	const float inv = 1.0f / scale, zp = (float)zero_point;
	const float lo = (float)qmin, hi = (float)qmax;

	if (threads < 2 || n < (1u << 15)) {
		fq_per_tensor(x, n, scale, zero_point, qmin, qmax);
		return;
	}
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		x[i] = fq_one(x[i], scale, inv, zp, lo, hi);
}

void fq_per_channel(float *x, int channels, size_t inner, const float *scales,
		    const int32_t *zero_points, int64_t qmin, int64_t qmax)
{
	for (int c = 0; c < channels; c++)
		fq_per_tensor(x + (size_t)c * inner, inner, scales[c],
			      zero_points ? zero_points[c] : 0, qmin, qmax);
}
