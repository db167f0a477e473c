/*
 * The range kinds: minmax, moving_average and per_channel_minmax.
 *
 * minmax needs no state of its own: the finite range every observer keeps
 * (obs->seen) is torch's running min/max, and merging it is exact.
 * moving_average keeps torch's float32 recurrence m += c (batch - m), plus
 * the first batch's extremes and the batch count, which is all it takes to
 * append one averaged stream to another: a stream of s batches started
 * from its own first batch x1 differs from the same batches continuing an
 * average m0 by (1 - c)^s (m0 - x1).  per_channel_minmax keeps a range per
 * row of a (channels, inner) tensor (weights, axis 0).
 */
#include <math.h>
#include <string.h>

#include "observers/observer_impl.h"

/* ---- minmax ---- */

static enum qcal_status minmax_update(struct observer *obs, const float *x,
				      const uint8_t *keep, size_t n, int threads,
				      struct scan_stats *batch,
				      struct qcal_err *err)
{
	(void)obs;
	(void)err;
	scan_range_mt(x, keep, n, threads, batch);
	return QCAL_OK;
}

static enum qcal_status minmax_merge(struct observer *dst,
				     const struct observer *src,
				     struct qcal_err *err)
{
	(void)dst;
	(void)src;
	(void)err;
	return QCAL_OK; /* observer_merge folds the ranges */
}

static enum qcal_status minmax_qparams(const struct observer *obs,
				       struct observer_qparams *out,
				       struct qcal_err *err)
{
	(void)err;
	out->clip_mins[0] = obs->seen.min;
	out->clip_maxs[0] = obs->seen.max;
	return QCAL_OK;
}

static void minmax_reset(struct observer *obs)
{
	(void)obs;
}

const struct observer_ops observer_minmax_ops = {
	.update = minmax_update,
	.merge = minmax_merge,
	.compute_qparams = minmax_qparams,
	.reset = minmax_reset,
};

/* ---- moving_average ---- */

static enum qcal_status ema_update(struct observer *obs, const float *x,
				   const uint8_t *keep, size_t n, int threads,
				   struct scan_stats *batch, struct qcal_err *err)
{
	struct ema_state *e = &obs->u.ema;
	/* torch multiplies by the Python constant as a float32 */
	const float c = (float)obs->opt.averaging_constant;

	(void)err;
	scan_range_mt(x, keep, n, threads, batch);
	if (!batch->finite)
		return QCAL_OK; /* a batch of NaN/Inf only does not move the average */
	if (e->batches == 0) {
		e->min = e->first_min = batch->min;
		e->max = e->first_max = batch->max;
	} else {
		e->min = e->min + c * (batch->min - e->min);
		e->max = e->max + c * (batch->max - e->max);
	}
	e->batches++;
	return QCAL_OK;
}

static enum qcal_status ema_merge(struct observer *dst,
				  const struct observer *src,
				  struct qcal_err *err)
{
	struct ema_state *d = &dst->u.ema;
	const struct ema_state *s = &src->u.ema;
	double decay;

	(void)err;
	if (s->batches == 0)
		return QCAL_OK;
	if (d->batches == 0) {
		*d = *s;
		return QCAL_OK;
	}
	/* src's batches continue dst's average */
	decay = pow(1.0 - (double)(float)dst->opt.averaging_constant, (double)s->batches);
	d->min = (float)((double)s->min + decay * ((double)d->min - (double)s->first_min));
	d->max = (float)((double)s->max + decay * ((double)d->max - (double)s->first_max));
	d->batches += s->batches;
	return QCAL_OK;
}

static enum qcal_status ema_qparams(const struct observer *obs,
				    struct observer_qparams *out,
				    struct qcal_err *err)
{
	(void)err;
	out->clip_mins[0] = obs->u.ema.min;
	out->clip_maxs[0] = obs->u.ema.max;
	return QCAL_OK;
}

static void ema_reset(struct observer *obs)
{
	memset(&obs->u.ema, 0, sizeof(obs->u.ema));
}

const struct observer_ops observer_moving_average_ops = {
	.update = ema_update,
	.merge = ema_merge,
	.compute_qparams = ema_qparams,
	.reset = ema_reset,
};

/* ---- per_channel_minmax ---- */

/* Rows [c0, c1) of a (channels, inner) tensor into the ranges and *st. */
static void pc_rows(struct observer *obs, const float *x, const uint8_t *keep,
		    size_t inner, int c0, int c1, struct scan_stats *st)
{
	scan_stats_init(st);
	for (int c = c0; c < c1; c++) {
		struct scan_stats row;
		size_t off = (size_t)c * inner;

		scan_range(x + off, keep ? keep + off : NULL, inner, &row);
		if (row.min < obs->u.pc.min[c])
			obs->u.pc.min[c] = row.min;
		if (row.max > obs->u.pc.max[c])
			obs->u.pc.max[c] = row.max;
		scan_stats_merge(st, &row);
	}
}

#define PC_MAX_THREADS 64

static enum qcal_status pc_update(struct observer *obs, const float *x,
				  const uint8_t *keep, size_t n, int threads,
				  struct scan_stats *batch, struct qcal_err *err)
{
	struct scan_stats part[PC_MAX_THREADS];
	int C = obs->opt.channels, T;
	size_t inner = n / (size_t)C;

	if (n % (size_t)C)
		return qcal_err_set(err, QCAL_EINVAL,
				    "per_channel_minmax observer: %zu values are not %d channels of equal size",
				    n, C);
	/* threads take whole rows, and only for tensors worth splitting */
	T = threads < 1 ? 1 : threads > PC_MAX_THREADS ? PC_MAX_THREADS : threads;
	T = T > C ? C : T;
	if (n < ((size_t)1 << 15))
		T = 1;
	#pragma omp parallel for num_threads(T) schedule(static, 1) if (T > 1)
	for (int t = 0; t < T; t++)
		pc_rows(obs, x, keep, inner, C * t / T, C * (t + 1) / T, &part[t]);
	*batch = part[0];
	for (int t = 1; t < T; t++)
		scan_stats_merge(batch, &part[t]);
	return QCAL_OK;
}

static enum qcal_status pc_merge(struct observer *dst,
				 const struct observer *src,
				 struct qcal_err *err)
{
	(void)err;
	for (int c = 0; c < dst->opt.channels; c++) {
		if (src->u.pc.min[c] < dst->u.pc.min[c])
			dst->u.pc.min[c] = src->u.pc.min[c];
		if (src->u.pc.max[c] > dst->u.pc.max[c])
			dst->u.pc.max[c] = src->u.pc.max[c];
	}
	return QCAL_OK;
}

static enum qcal_status pc_qparams(const struct observer *obs,
				   struct observer_qparams *out,
				   struct qcal_err *err)
{
	int C = obs->opt.channels;

	for (int c = 0; c < C; c++) {
		if (obs->u.pc.min[c] > obs->u.pc.max[c])
			return qcal_err_set(err, QCAL_ESTATE,
					    "per_channel_minmax observer: channel %d of %d saw no finite value",
					    c, C);
		out->clip_mins[c] = obs->u.pc.min[c];
		out->clip_maxs[c] = obs->u.pc.max[c];
	}
	return QCAL_OK;
}

static void pc_reset(struct observer *obs)
{
	for (int c = 0; c < obs->opt.channels; c++) {
		obs->u.pc.min[c] = INFINITY;
		obs->u.pc.max[c] = -INFINITY;
	}
}

const struct observer_ops observer_per_channel_ops = {
	.update = pc_update,
	.merge = pc_merge,
	.compute_qparams = pc_qparams,
	.reset = pc_reset,
};
