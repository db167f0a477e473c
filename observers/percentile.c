/*
 * The percentile kind: clip at the p-th percentile read from an exact
 * dyadic histogram (observers/dyhist.h).
 *
 * Symmetric: the histogram holds |x| and the clip is [-T, T] with T the
 * upper edge of the first cell at which at least ceil(p N / 100) of the N
 * values lie at or below; so T >= the exact empirical quantile q of |x|
 * and T - q <= one cell, 2^exp < 2 max|x| / (bins - 1) (T - q = 2^exp
 * only when q sits on a cell's lower edge).  Asymmetric: the histogram
 * holds x, and each tail gets the same treatment - the upper clip as
 * above, the lower clip at the lower edge of the last cell with at least
 * ceil(p N / 100) values at or above it (0 <= q_lo - clip < 2^exp) - with
 * 2^exp < 2 (max - min) / (bins - 2).  Clips never leave the observed
 * range.
 */
#include <math.h>

#include "observers/observer_impl.h"

static enum qcal_status pct_update(struct observer *obs, const float *x,
				   const uint8_t *keep, size_t n, int threads,
				   struct scan_stats *batch, struct qcal_err *err)
{
	return dyhist_update(&obs->u.dy, x, keep, n, threads, batch, err);
}

static enum qcal_status pct_merge(struct observer *dst,
				  const struct observer *src,
				  struct qcal_err *err)
{
	(void)err;
	dyhist_merge(&dst->u.dy, &src->u.dy);
	return QCAL_OK;
}

/* v rounded to float32 upwards / downwards (cell edges can need 25 bits). */
static float up_to_float(double v)
{
	float f = (float)v;

	return (double)f < v ? nextafterf(f, INFINITY) : f;
}

static float down_to_float(double v)
{
	float f = (float)v;

	return (double)f > v ? nextafterf(f, -INFINITY) : f;
}

/* Values needed at or beyond the clip: ceil(p N / 100), at least 1. */
static uint64_t needed(double percentile, uint64_t total)
{
	/* shave a relative 1e-12 so that p N / 100 landing a rounding error
	 * above an integer does not ask for one more value */
	double q = percentile / 100.0 * (double)total * (1.0 - 1e-12);
	uint64_t k = (uint64_t)ceil(q);

	return k < 1 ? 1 : k > total ? total : k;
}

static enum qcal_status pct_qparams(const struct observer *obs,
				    struct observer_qparams *out,
				    struct qcal_err *err)
{
	const struct dyhist *h = &obs->u.dy;
	uint64_t k = needed(obs->opt.percentile, h->total), cum = 0;
	int hi = h->bins - 1, lo = 0;
	double upper, lower;

	(void)err;
	for (int i = 0; i < h->bins; i++) {
		cum += h->counts[i];
		if (cum >= k) {
			hi = i;
			break;
		}
	}
	upper = dyhist_edge(h, hi + 1);
	if (h->of_abs) {
		float amax = fmaxf(fabsf(h->min), fabsf(h->max));
		float t = upper < amax ? up_to_float(upper) : amax;

		out->clip_mins[0] = fmaxf(h->min, -t);
		out->clip_maxs[0] = fminf(h->max, t);
		return QCAL_OK;
	}
	cum = 0;
	for (int i = h->bins - 1; i >= 0; i--) {
		cum += h->counts[i];
		if (cum >= k) {
			lo = i;
			break;
		}
	}
	lower = dyhist_edge(h, lo);
	out->clip_mins[0] = lower > h->min ? down_to_float(lower) : h->min;
	out->clip_maxs[0] = upper < h->max ? up_to_float(upper) : h->max;
	return QCAL_OK;
}

static void pct_reset(struct observer *obs)
{
	dyhist_reset(&obs->u.dy);
}

const struct observer_ops observer_percentile_ops = {
	.update = pct_update,
	.merge = pct_merge,
	.compute_qparams = pct_qparams,
	.reset = pct_reset,
};
