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
 *
 * A pass may be split over threads (OpenMP): each thread counts a slice
 * into its own group of planes and the groups are summed, so the counts
 * are exactly those of one thread.
 */
#ifndef QCAL_OBSERVERS_BIN_H
#define QCAL_OBSERVERS_BIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* Largest batch one set of 32-bit planes may count (no counter overflows). */
#define BIN_MAX_CHUNK ((size_t)1 << 31)
/* Most threads a pass is split over. */
#define BIN_MAX_GROUPS 64

struct bin_planes {
	uint32_t *c;          /* groups * stride counts, owned */
	int groups;           /* threads the passes use, one count set each */
	int planes;           /* 8: passes rotate over 8 planes, 1: direct */
	int bins;             /* slots 0..bins-1, dump at bins */
	size_t stride;        /* counts per group (>= bins + 1) */
};

/* What a pass saw besides the counts (over all n elements). */
struct bin_result {
	float min, max;       /* NaN-ignoring, Inf included, masked excluded */
	uint64_t nanlike;     /* NaN or masked */
	uint64_t kept;        /* not masked */
};

/*
 * Zeroed planes for passes over n elements with up to `threads` threads:
 * as many groups as there are threads with enough work, 8 planes per group
 * when its slice repays folding them, else 1.  QCAL_ENOMEM.
 */
enum qcal_status bin_planes_init(struct bin_planes *p, int bins, size_t n,
				 int threads, struct qcal_err *err);
void bin_planes_free(struct bin_planes *p);
void bin_planes_clear(struct bin_planes *p);
/* Elements counted in the dump slot so far (all groups and planes). */
uint64_t bin_planes_dumped(const struct bin_planes *p);
/* Sum every group into the first (slots 0..bins); returns it.  The other
 * groups are left zeroed. */
const uint32_t *bin_planes_fold(struct bin_planes *p);

/*
 * Power-of-two bins: element v goes to floor(a / 2^exp) - origin with
 * a = v (or |v| when of_abs), if that is in [0, bins).  The index is
 * exact: computed in float when 2^-exp is a float (-126 <= exp <= 149;
 * only tiny products can round then, and their floor is kept), in double
 * otherwise.  |exp| <= 300, |origin| <= 2^24.  n <= BIN_MAX_CHUNK.
 */
void bin_pass_dyadic(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, int exp, int64_t origin, bool of_abs,
		     struct bin_result *res);

/*
 * torch.histc's bins over [lo, hi]: index ((v - lo) * bins) / (hi - lo) in
 * float32, v == hi (or a quotient rounding to bins) in the last bin, v
 * outside [lo, hi] dumped.  hi > lo.  n <= BIN_MAX_CHUNK.
 */
void bin_pass_linear(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, float lo, float hi, struct bin_result *res);

#endif
