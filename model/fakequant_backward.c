/* Fake-quant backward: STE masks and LSQ scale gradients (fakequant_backward.h). */
#include "model/fakequant_backward.h"

#include "model/fakequant.h"

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

void fq_bwd_init(struct fq_bwd *p, const float *pre, float scale,
		 int32_t zero_point, int64_t qmin, int64_t qmax, bool learn)
{
	p->pre = pre;
	p->scale = scale;
	p->inv_scale = 1.0f / scale;
	p->zero_point = (float)zero_point;
	p->qmin = (float)qmin;
	p->qmax = (float)qmax;
	p->learn = learn;
}

double fq_lsq_grad_factor(size_t n, int64_t qmax)
{
	double d = (double)(n ? n : 1) * (double)(qmax >= 1 ? qmax : 1);
	return 1.0 / sqrt(d);
}

double fq_bwd_tensor(float *dx, const float *dy, const struct fq_bwd *p,
		     size_t n, const uint8_t *keep, int threads)
{
	/* chunks of 1024: float lanes sum 64 terms each before going to double */
	const size_t chunk = 1024;
	long chunks = (long)((n + chunk - 1) / chunk);
	double acc = 0.0;

	if (threads < 2 || n < (1u << 15))
		threads = 1;
	#pragma omp parallel for num_threads(threads) schedule(static) reduction(+:acc)
	for (long c = 0; c < chunks; c++) {
		size_t i0 = (size_t)c * chunk, len = n - i0 < chunk ? n - i0 : chunk;
		acc += fq_bwd_span(p, p->pre + i0, dx + i0, dy + i0, len,
				   keep ? keep + i0 : NULL);
	}
	return acc;
}

void fq_weight_backward_per_tensor(float *dw, const float *w, size_t n,
				   float scale, int32_t zero_point,
				   int64_t qmin, int64_t qmax, float grad_factor,
				   float *dscale)
{
	struct fq_bwd p;
	double acc;

	fq_bwd_init(&p, w, scale, zero_point, qmin, qmax, dscale != NULL);
	acc = fq_bwd_tensor(dw, dw, &p, n, NULL, 1);
	if (dscale)
		*dscale += (float)(grad_factor * acc);
}

void fq_weight_backward_per_channel(float *dw, const float *w, int channels,
				    size_t inner, const float *scales,
				    const int32_t *zero_points, int64_t qmin,
				    int64_t qmax, float grad_factor,
				    float *dscales)
{
	for (int c = 0; c < channels; c++)
		fq_weight_backward_per_tensor(dw + (size_t)c * inner, w + (size_t)c * inner,
					      inner, scales[c],
					      zero_points ? zero_points[c] : 0, qmin, qmax,
					      grad_factor, dscales ? &dscales[c] : NULL);
}

/*
 * The copy goes out with streaming stores where the build targets AVX-512:
 * it is read only by the backward, much later, so fetching its cache lines
 * before overwriting them (and evicting the working set for them) is waste.
 * Blocks of 16 floats; the arena offsets are 64-byte aligned, and a pre not
 * so aligned takes the plain loop.
 */
void fq_per_tensor_keep_mt(float *x, float *pre, size_t n, float scale,
			   int32_t zero_point, int64_t qmin, int64_t qmax,
			   int threads)
{
	const float inv = 1.0f / scale, zp = (float)zero_point;
	const float lo = (float)qmin, hi = (float)qmax;
	long blocks = (long)(n / 16);

	if (threads < 2 || n < (1u << 15))
		threads = 1;
#if defined(__AVX512F__)
	if (((uintptr_t)pre & 63) == 0) {
		#pragma omp parallel for num_threads(threads) schedule(static)
		for (long b = 0; b < blocks; b++) {
			float *xb = x + b * 16, y[16];
			__m512 v = _mm512_loadu_ps(xb);
			_mm512_stream_ps(pre + b * 16, v);
			for (int l = 0; l < 16; l++)
				y[l] = fq_one(xb[l], scale, inv, zp, lo, hi);
			memcpy(xb, y, sizeof(y));
		}
		_mm_sfence();
		for (size_t i = (size_t)blocks * 16; i < n; i++) {
			pre[i] = x[i];
			x[i] = fq_one(x[i], scale, inv, zp, lo, hi);
		}
		return;
	}
#endif
	(void)blocks;
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++) {
		float v = x[i];
		pre[i] = v;
		x[i] = fq_one(v, scale, inv, zp, lo, hi);
	}
}
