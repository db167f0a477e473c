/*
 * The observer lifecycle and everything the kinds share (see
 * observer_impl.h): options, one allocation per instance, NaN/Inf and
 * range bookkeeping, and the conversion of each kind's clip range into
 * torch's scale and zero point.
 */
#include "observers/observer_impl.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers/qparams.h"

#define OBSERVER_BINS_MIN 16
#define OBSERVER_BINS_MAX (1 << 20)
#define OBSERVER_ALIGN 64

static const struct {
	const char *name;
	const struct observer_ops *ops;
	int default_bins;            /* 0: no histogram */
} kinds[OBSERVER_KIND_COUNT] = {
	[OBSERVER_MINMAX] = { "minmax", &observer_minmax_ops, 0 },
	[OBSERVER_MOVING_AVERAGE] = { "moving_average", &observer_moving_average_ops, 0 },
	/* the data fills 1/2..1 of a dyadic histogram: 2048 bins give
	 * >= 1024 over the range */
	[OBSERVER_PERCENTILE] = { "percentile", &observer_percentile_ops, 2048 },
	/* >= 2048 bins over [0, max|x|], TensorRT's resolution */
	[OBSERVER_ENTROPY] = { "entropy", &observer_entropy_ops, 4096 },
	[OBSERVER_MSE] = { "mse", &observer_mse_ops, 2048 },     /* torch's default */
	[OBSERVER_PER_CHANNEL_MINMAX] = { "per_channel_minmax", &observer_per_channel_ops, 0 },
};

const char *observer_kind_name(enum observer_kind kind)
{
	if ((unsigned)kind >= OBSERVER_KIND_COUNT)
		return "unknown";
	return kinds[kind].name;
}

int observer_kind_parse(const char *name, enum observer_kind *kind)
{
	for (int k = 0; k < OBSERVER_KIND_COUNT; k++)
		if (name && !strcmp(name, kinds[k].name)) {
			*kind = (enum observer_kind)k;
			return 0;
		}
	return -1;
}

void observer_options_init(struct observer_options *opt, enum observer_kind kind,
			   enum qcal_dtype dtype, bool symmetric)
{
	memset(opt, 0, sizeof(*opt));
	opt->kind = kind;
	opt->dtype = dtype;
	opt->symmetric = symmetric;
}

/* Validate and fill defaults; names the first bad option. */
static enum qcal_status resolve_options(const struct observer_options *in,
					struct observer_options *o,
					struct qcal_err *err)
{
	const char *kn;

	if (!in)
		return qcal_err_set(err, QCAL_EINVAL, "observer options: NULL");
	*o = *in;
	if ((unsigned)o->kind >= OBSERVER_KIND_COUNT)
		return qcal_err_set(err, QCAL_EINVAL,
				    "observer kind %d: expected one of minmax, moving_average, percentile, entropy, mse, per_channel_minmax",
				    (int)o->kind);
	kn = kinds[o->kind].name;
	if (o->dtype == QCAL_DTYPE_FLOAT || qcal_dtype_bits(o->dtype) == 0)
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer with dtype %s: expected an integer dtype (int4..int32)",
				    kn, qcal_dtype_name(o->dtype));
	if (o->percentile == 0)
		o->percentile = 99.99;
	if (!(o->percentile > 0 && o->percentile <= 100))
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer: percentile %g: expected (0, 100]",
				    kn, o->percentile);
	if (o->averaging_constant == 0)
		o->averaging_constant = 0.01;
	if (!(o->averaging_constant > 0 && o->averaging_constant <= 1))
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer: averaging constant %g: expected (0, 1]",
				    kn, o->averaging_constant);
	if (kinds[o->kind].default_bins) {
		if (o->bins == 0)
			o->bins = kinds[o->kind].default_bins;
		if (o->bins < OBSERVER_BINS_MIN || o->bins > OBSERVER_BINS_MAX)
			return qcal_err_set(err, QCAL_EINVAL,
					    "%s observer: %d bins: expected %d..%d (0 for %d)",
					    kn, o->bins, OBSERVER_BINS_MIN,
					    OBSERVER_BINS_MAX, kinds[o->kind].default_bins);
	} else if (o->bins != 0) {
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer: bins %d: only percentile, entropy and mse keep a histogram (expected 0)",
				    kn, o->bins);
	}
	if (o->upsample_rate == 0)
		o->upsample_rate = 128;
	if (o->upsample_rate < 1 || o->upsample_rate > 1024)
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer: upsample rate %d: expected 1..1024",
				    kn, o->upsample_rate);
	if (o->kind == OBSERVER_PER_CHANNEL_MINMAX) {
		if (o->channels < 1)
			return qcal_err_set(err, QCAL_EINVAL,
					    "%s observer: %d channels: expected > 0",
					    kn, o->channels);
	} else if (o->channels > 1 || o->channels < 0) {
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer: %d channels: per-tensor kinds take 0 or 1 (use per_channel_minmax)",
				    kn, o->channels);
	} else {
		o->channels = 1;
	}
	if (o->eps == 0)
		o->eps = FLT_EPSILON;
	if (!(o->eps > 0) || !isfinite(o->eps))
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer: eps %g: expected a finite value > 0",
				    kn, (double)o->eps);
	return QCAL_OK;
}

size_t observer_storage_bytes(const struct observer_options *opt)
{
	switch (opt->kind) {
	case OBSERVER_PERCENTILE:
	case OBSERVER_ENTROPY:
		return (size_t)opt->bins * sizeof(uint64_t);
	case OBSERVER_MSE:
		return (size_t)opt->bins * sizeof(float);
	case OBSERVER_PER_CHANNEL_MINMAX:
		return 2 * (size_t)opt->channels * sizeof(float);
	default:
		return 0;
	}
}

void observer_state_init(struct observer *obs, void *storage)
{
	const struct observer_options *o = &obs->opt;

	switch (o->kind) {
	case OBSERVER_PERCENTILE:
		/* symmetric quantiles are quantiles of |x| */
		dyhist_init(&obs->u.dy, o->bins, o->symmetric, storage);
		break;
	case OBSERVER_ENTROPY:
		dyhist_init(&obs->u.dy, o->bins, true, storage);
		break;
	case OBSERVER_MSE:
		torchhist_init(&obs->u.th, o->bins, o->upsample_rate, storage);
		break;
	case OBSERVER_PER_CHANNEL_MINMAX:
		obs->u.pc.min = storage;
		obs->u.pc.max = obs->u.pc.min + o->channels;
		break;
	default:
		break;
	}
	observer_reset(obs);
}

double observer_levels(const struct observer *obs)
{
	int64_t qmin, qmax;

	qcal_dtype_range(obs->opt.dtype, &qmin, &qmax);
	return (double)(qmax - qmin) + 1.0;
}

enum qcal_status observer_create(struct observer **out,
				 const struct observer_options *opt,
				 struct qcal_err *err)
{
	struct observer_options o;
	struct observer *obs;
	enum qcal_status status;
	size_t head, bytes;

	*out = NULL;
	status = resolve_options(opt, &o, err);
	if (status != QCAL_OK)
		return status;
	head = (sizeof(struct observer) + OBSERVER_ALIGN - 1) / OBSERVER_ALIGN * OBSERVER_ALIGN;
	bytes = head + observer_storage_bytes(&o);
	obs = aligned_alloc(OBSERVER_ALIGN, (bytes + OBSERVER_ALIGN - 1) / OBSERVER_ALIGN * OBSERVER_ALIGN);
	if (!obs)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "%s observer of %zu bytes: out of memory",
				    kinds[o.kind].name, bytes);
	memset(obs, 0, head);
	obs->ops = kinds[o.kind].ops;
	obs->opt = o;
	obs->bytes = bytes;
	observer_state_init(obs, (char *)obs + head);
	*out = obs;
	return QCAL_OK;
}

void observer_free(struct observer *obs)
{
	free(obs);
}

const struct observer_options *observer_options(const struct observer *obs)
{
	return &obs->opt;
}

size_t observer_state_bytes(const struct observer *obs)
{
	return obs->bytes;
}

void observer_reset(struct observer *obs)
{
	scan_stats_init(&obs->seen);
	obs->ops->reset(obs);
}

static enum qcal_status update(struct observer *obs, const float *x,
			       const uint8_t *keep, size_t n, int threads,
			       struct qcal_err *err)
{
	struct scan_stats batch;
	enum qcal_status status;

	if (n == 0)
		return QCAL_OK;
	if (!x)
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer update: NULL data for %zu values",
				    kinds[obs->opt.kind].name, n);
	status = obs->ops->update(obs, x, keep, n, threads, &batch, err);
	if (status == QCAL_OK)
		scan_stats_merge(&obs->seen, &batch);
	return status;
}

enum qcal_status observer_update(struct observer *obs, const float *x, size_t n,
				 struct qcal_err *err)
{
	return update(obs, x, NULL, n, 1, err);
}

enum qcal_status observer_update_masked(struct observer *obs, const float *x,
					const uint8_t *keep, size_t n,
					struct qcal_err *err)
{
	if (n > 0 && !keep)
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer masked update: NULL mask for %zu values",
				    kinds[obs->opt.kind].name, n);
	return update(obs, x, keep, n, 1, err);
}

enum qcal_status observer_update_parallel(struct observer *obs, const float *x,
					  const uint8_t *keep, size_t n,
					  int threads, struct qcal_err *err)
{
	return update(obs, x, keep, n, threads, err);
}

/* Names the first option in which a and b differ, or NULL. */
static const char *options_differ(const struct observer_options *a,
				  const struct observer_options *b)
{
	if (a->kind != b->kind)
		return "kind";
	if (a->dtype != b->dtype)
		return "dtype";
	if (a->symmetric != b->symmetric)
		return "symmetric";
	if (a->percentile != b->percentile)
		return "percentile";
	if (a->averaging_constant != b->averaging_constant)
		return "averaging_constant";
	if (a->bins != b->bins)
		return "bins";
	if (a->upsample_rate != b->upsample_rate)
		return "upsample_rate";
	if (a->channels != b->channels)
		return "channels";
	if (a->eps != b->eps)
		return "eps";
	return NULL;
}

enum qcal_status observer_merge(struct observer *dst, const struct observer *src,
				struct qcal_err *err)
{
	const char *diff = options_differ(&dst->opt, &src->opt);
	enum qcal_status status;

	if (diff)
		return qcal_err_set(err, QCAL_EINVAL,
				    "merging a %s observer into a %s observer: option %s differs (states merge only with equal options)",
				    kinds[src->opt.kind].name,
				    kinds[dst->opt.kind].name, diff);
	if (dst == src)
		return qcal_err_set(err, QCAL_EINVAL,
				    "merging a %s observer into itself",
				    kinds[dst->opt.kind].name);
	status = dst->ops->merge(dst, src, err);
	if (status == QCAL_OK)
		scan_stats_merge(&dst->seen, &src->seen);
	return status;
}

void observer_qparams_free(struct observer_qparams *q)
{
	if (!q)
		return;
	free(q->scales);
	q->scales = NULL;
	q->zero_points = NULL;
	q->clip_mins = q->clip_maxs = NULL;
}

enum qcal_status observer_compute_qparams(const struct observer *obs,
					  struct observer_qparams *out,
					  struct qcal_err *err)
{
	const struct observer_options *o = &obs->opt;
	const char *kn = kinds[o->kind].name;
	enum qcal_status status;
	int C = o->channels;

	memset(out, 0, sizeof(*out));
	out->kind = o->kind;
	out->dtype = o->dtype;
	qcal_dtype_range(o->dtype, &out->qmin, &out->qmax);
	out->symmetric = o->symmetric;
	out->channels = C;
	out->count = obs->seen.finite;
	out->nan_count = obs->seen.nan;
	out->inf_count = obs->seen.inf;
	out->observed_min = obs->seen.min;
	out->observed_max = obs->seen.max;
	if (obs->seen.finite == 0)
		return qcal_err_set(err, QCAL_ESTATE,
				    "%s observer: no finite value observed (%llu NaN, %llu Inf): expected at least one update with finite data",
				    kn, (unsigned long long)obs->seen.nan,
				    (unsigned long long)obs->seen.inf);
	/* one block: scales, clip_mins, clip_maxs (float), zero_points */
	out->scales = malloc((size_t)C * (3 * sizeof(float) + sizeof(int32_t)));
	if (!out->scales)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "%s observer qparams for %d channels: out of memory",
				    kn, C);
	out->clip_mins = out->scales + C;
	out->clip_maxs = out->clip_mins + C;
	out->zero_points = (int32_t *)(out->clip_maxs + C);
	status = obs->ops->compute_qparams(obs, out, err);
	if (status != QCAL_OK)
		return status;
	out->clip_min = INFINITY;
	out->clip_max = -INFINITY;
	for (int c = 0; c < C; c++) {
		status = qparams_from_range(o->dtype, o->symmetric, o->eps,
					    out->clip_mins[c], out->clip_maxs[c],
					    &out->scales[c], &out->zero_points[c], err);
		if (status != QCAL_OK)
			return qcal_err_prefix(err, "%s observer%s: ", kn,
					       C > 1 ? " (a channel)" : "");
		out->clip_min = fmin(out->clip_min, out->clip_mins[c]);
		out->clip_max = fmax(out->clip_max, out->clip_maxs[c]);
	}
	if (o->kind == OBSERVER_PER_CHANNEL_MINMAX) {
		out->scale = NAN;
		out->zero_point = 0;
	} else {
		out->scale = out->scales[0];
		out->zero_point = out->zero_points[0];
	}
	return QCAL_OK;
}

void observer_histogram_free(struct observer_histogram *h)
{
	if (h) {
		free(h->counts);
		h->counts = NULL;
	}
}

enum qcal_status observer_get_histogram(const struct observer *obs,
					struct observer_histogram *out,
					struct qcal_err *err)
{
	const char *kn = kinds[obs->opt.kind].name;
	int bins = obs->opt.bins;

	memset(out, 0, sizeof(*out));
	if (!kinds[obs->opt.kind].default_bins)
		return qcal_err_set(err, QCAL_EINVAL,
				    "%s observer keeps no histogram (percentile, entropy and mse do)",
				    kn);
	if (obs->seen.finite == 0)
		return qcal_err_set(err, QCAL_ESTATE,
				    "%s observer: no finite value observed yet, so no histogram",
				    kn);
	out->counts = malloc((size_t)bins * sizeof(double));
	if (!out->counts)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "%s observer histogram of %d bins: out of memory",
				    kn, bins);
	out->bins = bins;
	if (obs->opt.kind == OBSERVER_MSE) {
		const struct torchhist *h = &obs->u.th;
		float lo, hi;

		torchhist_edges(h, &lo, &hi);
		out->lo = lo;
		out->hi = hi;
		for (int i = 0; i < bins; i++)
			out->counts[i] = h->hist[i];
	} else {
		const struct dyhist *h = &obs->u.dy;

		out->of_abs = h->of_abs;
		out->lo = dyhist_edge(h, 0);
		out->hi = dyhist_edge(h, bins);
		for (int i = 0; i < bins; i++)
			out->counts[i] = (double)h->counts[i];
	}
	return QCAL_OK;
}
