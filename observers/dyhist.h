/*
 * Dyadic histograms (private to observers/): the percentile and entropy
 * observers' state.
 *
 * Bins have width 2^exp and sit on the global grid [k 2^exp, (k+1) 2^exp),
 * k integer; the histogram stores `bins` consecutive grid cells starting at
 * k = origin.  When data falls outside, exp grows and cells are merged in
 * aligned groups of 2^d, which is exact: a coarse cell is the union of the
 * fine ones.  The layout is a function of the data alone,
 *
 *   exp    = the smallest exponent >= ilogb(max|x|) - 23 (bins no finer
 *            than float32 spacing; at least -172) at which the finite
 *            data spans at most `bins` cells,
 *   origin = the cell of the smallest value (0 for histograms of |x|),
 *
 * so the counts do not depend on how the data was split into batches or
 * shards: merging two histograms gives exactly the histogram of all the
 * data.  The price is resolution: the data fills between half and all of
 * the bins (width < 2 (max - min) / (bins - 2)), never interpolated.
 */
#ifndef QCAL_OBSERVERS_DYHIST_H
#define QCAL_OBSERVERS_DYHIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "observers/scan.h"

struct dyhist {
	int bins;
	bool of_abs;         /* cells of |x| (origin stays 0) */
	bool empty;          /* no finite value yet */
	int exp;             /* cell width 2^exp */
	int64_t origin;      /* grid index of counts[0] */
	float min, max;      /* finite values seen (signed, also when of_abs) */
	uint64_t total;      /* sum of counts */
	uint64_t *counts;    /* [bins], storage owned by the caller */
};

/* An empty histogram on caller storage of `bins` counters. */
void dyhist_init(struct dyhist *h, int bins, bool of_abs, uint64_t *storage);
void dyhist_reset(struct dyhist *h);

/*
 * Count x[0..n) (kept elements only if keep != NULL) using up to `threads`
 * threads; non-finite values are not counted but reported in *st (the
 * batch's statistics).  QCAL_ENOMEM (scratch), with h unchanged.
 */
enum qcal_status dyhist_update(struct dyhist *h, const float *x,
			       const uint8_t *keep, size_t n, int threads,
			       struct scan_stats *st, struct qcal_err *err);

/* dst += src (same bins and of_abs). */
void dyhist_merge(struct dyhist *dst, const struct dyhist *src);

/* Width of a cell, and the value at the lower edge of counts[i]. */
double dyhist_width(const struct dyhist *h);
double dyhist_edge(const struct dyhist *h, int64_t i);

/* Index one past the last non-zero count (0 if empty). */
int dyhist_used(const struct dyhist *h);

#endif
