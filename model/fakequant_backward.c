/* Fake-quant backward: STE masks and LSQ scale gradients (fakequant_backward.h). */
#include "model/fakequant_backward.h"

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
	double acc = 0.0;

	if (threads < 2 || n < (1u << 15))
		threads = 1;
	#pragma omp parallel for num_threads(threads) schedule(static) reduction(+:acc)
	for (size_t i = 0; i < n; i++) {
		if (keep && !keep[i]) {
			dx[i] = 0.0f;
			continue;
		}
		dx[i] = fq_bwd_elem(p, p->pre[i], dy[i], &acc);
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
