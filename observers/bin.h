/*
 * Histogram binning kernels (private to observers/).
 *
 * One pass over a batch computes every element's bin index 16 lanes at a
 * time (vectorised: mul, floor, compare, blend, convert) together with the
 * batch's NaN-ignoring min/max, then increments 32-bit counters.  The
 * increments rotate over 8 copies ("planes") of the histogram, so that a
 * run of equal indices - softmax outputs near 0, exact zeros - does not
 * serialise on store-to-load forwarding of one counter; the planes are
 * folded once per call.  Elements that are NaN, infinite, masked out or
 * outside the histogram all land in one extra "dump" slot (index bins), so
 * the caller learns from one number whether the batch fitted.
 */
#ifndef QCAL_OBSERVERS_BIN_H
#define QCAL_OBSERVERS_BIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Largest batch one set of 32-bit planes may count (no counter overflows). */
#define BIN_MAX_CHUNK ((size_t)1 << 31)

struct bin_planes {
	uint32_t *c;          /* planes * stride counters, owned */
	int planes;           /* 1 or 8 */
	int bins;             /* slots 0..bins-1, dump at bins */
	size_t stride;        /* counters per plane (>= bins + 1) */
};

/* What a pass saw besides the counts (over all n elements). */
struct bin_result {
	float min, max;       /* NaN-ignoring, Inf included, masked excluded */
	uint64_t nanlike;     /* NaN or masked */
	uint64_t kept;        /* not masked */
};

/*
 * Zeroed planes for a batch of n elements: 8 planes when n is large enough
 * to repay folding them, else 1.  QCAL_ENOMEM (err names the size).
 */
enum qcal_status bin_planes_init(struct bin_planes *p, int bins, size_t n,
				 struct qcal_err *err);
void bin_planes_free(struct bin_planes *p);
void bin_planes_clear(struct bin_planes *p);
/* Sum the planes into plane 0 (slots 0..bins) and return plane 0. */
const uint32_t *bin_planes_fold(struct bin_planes *p);

/*
 * Power-of-two bins: element v goes to floor(a * scale) - origin with
 * a = v (or |v| when of_abs), if that is in [0, bins).  scale = 2^-exp with
 * |exp| <= 300 and |origin| < 2^52: computed in double, the index is the
 * exact floor(a / 2^exp) - origin.  n <= BIN_MAX_CHUNK.
 */
void bin_pass_dyadic(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, double scale, int64_t origin, bool of_abs,
		     struct bin_result *res);

/*
 * torch.histc's bins over [lo, hi]: index ((v - lo) * bins) / (hi - lo) in
 * float32, v == hi (or a quotient rounding to bins) in the last bin, v
 * outside [lo, hi] dumped.  hi > lo.  n <= BIN_MAX_CHUNK.
 */
void bin_pass_linear(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, float lo, float hi, struct bin_result *res);

#endif
