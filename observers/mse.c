/*
 * The mse kind: torch.ao's HistogramObserver (observers/torchhist.h) -
 * its histogram, its L2 range search towards the dtype's 2^bits levels,
 * and its qparams from the range found.
 */
#include "observers/observer_impl.h"

static enum qcal_status mse_update(struct observer *obs, const float *x,
				   const uint8_t *keep, size_t n, int threads,
				   struct scan_stats *batch, struct qcal_err *err)
{
	return torchhist_update(&obs->u.th, x, keep, n, threads, batch, err);
}

static enum qcal_status mse_merge(struct observer *dst,
				  const struct observer *src,
				  struct qcal_err *err)
{
	return torchhist_merge(&dst->u.th, &src->u.th, err);
}

static enum qcal_status mse_qparams(const struct observer *obs,
				    struct observer_qparams *out,
				    struct qcal_err *err)
{
	const struct torchhist *h = &obs->u.th;

	if (h->min == h->max) {
		/* torch's search ends where it starts for a single value */
		out->clip_mins[0] = h->min;
		out->clip_maxs[0] = h->max;
		return QCAL_OK;
	}
	return torchhist_search(h, observer_levels(obs), &out->clip_mins[0],
				&out->clip_maxs[0], err);
}

static void mse_reset(struct observer *obs)
{
	torchhist_reset(&obs->u.th);
}

const struct observer_ops observer_mse_ops = {
	.update = mse_update,
	.merge = mse_merge,
	.compute_qparams = mse_qparams,
	.reset = mse_reset,
};
