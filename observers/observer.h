/*
 * Observers: the statistics a calibration run keeps per quantization point,
 * and the quantization parameters (scale, zero point) derived from them.
 *
 * One uniform API over six kinds, so the calibration engine treats every
 * point alike: create from options, update with whole batches (float32,
 * any size, optionally with a keep-mask), merge states (threads now,
 * shards later), compute qparams, reset, free.  Each kind is a small table
 * of function pointers {update, merge, compute_qparams, reset}; an instance
 * holds state only, in one allocation whose size depends on the options and
 * never on the data (a few KB; at most ~34 KB per histogram observer with
 * default bins).
 *
 * NaN and +-Inf never reach a range: they are excluded, counted and
 * reported.  Distinct instances share nothing, so different threads may
 * update different observers concurrently; one instance is not
 * thread-safe (give each thread its own and merge).
 *
 * The scale arithmetic is torch.ao.quantization's (observers/qparams.h);
 * observers/README.md describes every kind, its torch counterpart, its error
 * bounds and its merge semantics.
 */
#ifndef QCAL_OBSERVERS_OBSERVER_H
#define QCAL_OBSERVERS_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/status.h"

enum observer_kind {
	OBSERVER_MINMAX,             /* running min/max (torch MinMaxObserver) */
	OBSERVER_MOVING_AVERAGE,     /* EMA of batch min/max (MovingAverageMinMaxObserver) */
	OBSERVER_PERCENTILE,         /* quantile clip from an exact power-of-two histogram */
	OBSERVER_ENTROPY,            /* TensorRT-style KL threshold on a histogram of |x| */
	OBSERVER_MSE,                /* torch HistogramObserver: L2 range search */
	OBSERVER_PER_CHANNEL_MINMAX, /* min/max per row of a (channels, inner) tensor */
	OBSERVER_KIND_COUNT
};

/*
 * Options.  A zero numeric field means "the kind's default" (given in
 * brackets), so a zero-initialised struct plus kind and dtype is valid for
 * every per-tensor kind.
 */
struct observer_options {
	enum observer_kind kind;
	enum qcal_dtype dtype;       /* any integer dtype of core/dtype.h */
	bool symmetric;              /* false: affine (asymmetric) */
	double percentile;           /* percentile: in (0, 100] [99.99] */
	double averaging_constant;   /* moving_average: in (0, 1] [0.01] */
	int bins;                    /* histogram kinds: [16, 1<<20]
				      * [percentile 2048, entropy 4096, mse 2048] */
	int upsample_rate;           /* mse: torch's upsample_rate, [1, 1024] [128] */
	int channels;                /* per_channel_minmax: > 0 (required); others 0 or 1 */
	float eps;                   /* smallest scale, > 0 [FLT_EPSILON, as torch] */
};

/*
 * The result of observer_compute_qparams.  The arrays always hold
 * `channels` entries (1 for per-tensor kinds) in one block that the struct
 * owns: release it with observer_qparams_free.
 */
struct observer_qparams {
	enum observer_kind kind;
	enum qcal_dtype dtype;
	int64_t qmin, qmax;
	bool symmetric;
	int channels;
	float scale;                 /* per-tensor kinds: == scales[0] */
	int32_t zero_point;          /* per-tensor kinds: == zero_points[0] */
	float *scales;               /* [channels] */
	int32_t *zero_points;        /* [channels] */
	float *clip_mins, *clip_maxs; /* [channels] range each scale represents,
				       * before torch widens it to include 0 */
	double clip_min, clip_max;   /* over all channels */
	double observed_min, observed_max; /* finite values seen (all channels) */
	uint64_t count;              /* finite values seen */
	uint64_t nan_count, inf_count; /* excluded values seen */
};

struct observer;

/* Fill opt with kind, dtype and symmetric, every other field default (0). */
void observer_options_init(struct observer_options *opt, enum observer_kind kind,
			   enum qcal_dtype dtype, bool symmetric);

/*
 * Validate opt and make an empty observer in *out (NULL on failure).
 * QCAL_EINVAL names the option and the accepted range; QCAL_ENOMEM.
 */
enum qcal_status observer_create(struct observer **out,
				 const struct observer_options *opt,
				 struct qcal_err *err);

/* Accepts NULL. */
void observer_free(struct observer *obs);

/*
 * Add n values (n == 0 is a no-op) as one batch: for moving_average and
 * mse the batch boundaries matter (as they do in torch), for the other
 * kinds only the values do.  Per-channel observers read x as (channels,
 * n / channels) rows; n must be a multiple of channels (QCAL_EINVAL
 * otherwise, the state is left unchanged).  Histogram kinds allocate a
 * scratch of (bins + 1) 32-bit counts per counting thread (mse also a
 * batch histogram) and use up to 66 KB of each counting thread's stack;
 * QCAL_ENOMEM leaves the state unchanged (for tensors of more than 2^31
 * values, the slices before the failure stay counted).  x is never kept.
 */
enum qcal_status observer_update(struct observer *obs, const float *x, size_t n,
				 struct qcal_err *err);

/*
 * As observer_update, counting only the x[i] with keep[i] != 0 (keep has n
 * bytes).  This is how masked positions (shifted-window attention) stay
 * out of the statistics.  Masked values are not counted anywhere.
 */
enum qcal_status observer_update_masked(struct observer *obs, const float *x,
					const uint8_t *keep, size_t n,
					struct qcal_err *err);

/*
 * observer_update (keep NULL) or observer_update_masked with the work of
 * one large tensor split over up to `threads` OpenMP threads (fewer for
 * small tensors; one inside an enclosing parallel region).  Every kind
 * gives exactly the state a single thread gives: the threads count or
 * scan disjoint slices with a shared layout and the parts are summed.
 */
enum qcal_status observer_update_parallel(struct observer *obs, const float *x,
					  const uint8_t *keep, size_t n,
					  int threads, struct qcal_err *err);

/*
 * Fold src's state into dst (src unchanged).  Both must have been created
 * with equal options (QCAL_EINVAL names the first difference).
 * minmax, per_channel_minmax, percentile and entropy: the result equals
 * feeding dst's and src's data to one observer, exactly.  moving_average:
 * src's batches are taken to follow dst's (order matters; within float32
 * rounding of the sequential average).  mse: torch's histogram depends on
 * the order of batches itself; the merged qparams agree with a single
 * stream within the tolerance in observers/README.md.  QCAL_ENOMEM possible
 * (mse needs a scratch histogram), dst unchanged then.
 */
enum qcal_status observer_merge(struct observer *dst, const struct observer *src,
				struct qcal_err *err);

/*
 * Quantization parameters from the data seen so far; *out is initialised by
 * this call (free it with observer_qparams_free, also after a failure).
 * QCAL_ESTATE if no finite value was seen (or, per channel, a channel saw
 * none), QCAL_ERANGE if the range is too wide for a float32 scale,
 * QCAL_ENOMEM.
 */
enum qcal_status observer_compute_qparams(const struct observer *obs,
					  struct observer_qparams *out,
					  struct qcal_err *err);

/* Release the arrays of q (keeps the scalars).  Accepts NULL. */
void observer_qparams_free(struct observer_qparams *q);

/* Forget all data; options and memory stay. */
void observer_reset(struct observer *obs);

/* The options the observer was made with, defaults resolved. */
const struct observer_options *observer_options(const struct observer *obs);

/* Bytes the instance holds: fixed at creation, whatever the data. */
size_t observer_state_bytes(const struct observer *obs);

/*
 * A copy of the histogram a histogram kind holds (reports, tests): bins
 * counts over [lo, hi) of equal width.  percentile (symmetric) and entropy
 * histogram |x|.  QCAL_EINVAL for kinds without a histogram, QCAL_ESTATE
 * before any finite value.  Free with observer_histogram_free.
 */
struct observer_histogram {
	int bins;
	double lo, hi;
	bool of_abs;                 /* counts of |x| */
	double *counts;              /* [bins] owned */
};
enum qcal_status observer_get_histogram(const struct observer *obs,
					struct observer_histogram *out,
					struct qcal_err *err);
void observer_histogram_free(struct observer_histogram *h);

/* Config names: "minmax", "moving_average", "percentile", "entropy", "mse",
 * "per_channel_minmax"; "unknown" for anything else. */
const char *observer_kind_name(enum observer_kind kind);
/* 0 and *kind set on success, -1 for an unknown name. */
int observer_kind_parse(const char *name, enum observer_kind *kind);

#endif
