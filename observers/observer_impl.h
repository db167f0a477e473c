/*
 * Inside an observer (private to observers/): the instance layout and the
 * per-kind table of function pointers.
 *
 * observer.c owns everything common to the kinds - option checks, the
 * single allocation, NaN/Inf and range bookkeeping, turning clip ranges
 * into scales with qparams_from_range - so that a kind only says how it
 * folds a batch into its state, how two states merge and which clip range
 * its state implies.
 */
#ifndef QCAL_OBSERVERS_OBSERVER_IMPL_H
#define QCAL_OBSERVERS_OBSERVER_IMPL_H

#include "observers/dyhist.h"
#include "observers/observer.h"
#include "observers/scan.h"
#include "observers/torchhist.h"

struct observer_ops {
	/* Fold a batch into the state using up to `threads` threads (the
	 * result may not depend on it); *batch receives the batch's counts
	 * and finite range.  Must leave the state unchanged on failure. */
	enum qcal_status (*update)(struct observer *obs, const float *x,
				   const uint8_t *keep, size_t n, int threads,
				   struct scan_stats *batch, struct qcal_err *err);
	/* dst += src; options already checked equal. */
	enum qcal_status (*merge)(struct observer *dst, const struct observer *src,
				  struct qcal_err *err);
	/* Fill out->clip_mins/clip_maxs[0..channels) (allocated by the
	 * caller); called only when some finite value was seen. */
	enum qcal_status (*compute_qparams)(const struct observer *obs,
					    struct observer_qparams *out,
					    struct qcal_err *err);
	void (*reset)(struct observer *obs);
};

/* Moving average of batch minima/maxima (torch's float32 recurrence). */
struct ema_state {
	uint64_t batches;        /* batches with a finite value */
	float min, max;          /* the averages */
	float first_min, first_max; /* the first batch's extremes (for merge) */
};

struct observer {
	const struct observer_ops *ops;
	struct observer_options opt; /* defaults resolved */
	size_t bytes;                /* this allocation */
	struct scan_stats seen;      /* every batch: finite range and counts */
	union {
		struct ema_state ema;
		struct {
			float *min, *max; /* [channels] */
		} pc;
		struct dyhist dy;
		struct torchhist th;
	} u;
	/* trailing storage: histogram or per-channel arrays */
};

extern const struct observer_ops observer_minmax_ops;
extern const struct observer_ops observer_moving_average_ops;
extern const struct observer_ops observer_per_channel_ops;
extern const struct observer_ops observer_percentile_ops;
extern const struct observer_ops observer_entropy_ops;
extern const struct observer_ops observer_mse_ops;

/* Bytes of trailing storage a kind needs for resolved options. */
size_t observer_storage_bytes(const struct observer_options *opt);
/* Point the kind's state at its storage and empty it. */
void observer_state_init(struct observer *obs, void *storage);

/* Levels of the quantized grid (qmax - qmin + 1) as a double. */
double observer_levels(const struct observer *obs);

#endif
