/*
 * Range scans shared by every observer kind (private to observers/).
 *
 * The common case is a tensor with no Inf: one vectorised pass keeps 16
 * lane-wise minima/maxima in the NaN-ignoring form `v < m ? v : m` and
 * counts NaN lanes.  Only when that pass sees an infinite extreme does a
 * second, filtering pass recount, so the price of exact NaN/Inf
 * bookkeeping is paid by the rare tensors that carry them.
 *
 * The lanes are GNU C vector types rather than arrays: GCC will not
 * vectorise a min/max reduction without -ffast-math (it is not
 * reassociable), and its unroller turned 16-element array lanes into
 * scalar code.  A vector of 16 floats is one AVX-512 register here and a
 * pair or quad of registers on narrower targets; no intrinsics, no #ifdef.
 */
#ifndef QCAL_OBSERVERS_SCAN_H
#define QCAL_OBSERVERS_SCAN_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define SCAN_LANES 16

typedef float scan_f32x16 __attribute__((vector_size(64)));
typedef int32_t scan_i32x16 __attribute__((vector_size(64)));
typedef uint8_t scan_u8x16 __attribute__((vector_size(16)));

/* Lane-wise NaN-ignoring min/max, NaN-or-masked count and kept count. */
struct scan_lanes {
	scan_f32x16 lo, hi;
	scan_i32x16 bad, kept;
};

static inline void scan_lanes_init(struct scan_lanes *l)
{
	for (int j = 0; j < SCAN_LANES; j++) {
		l->lo[j] = INFINITY;
		l->hi[j] = -INFINITY;
		l->bad[j] = 0;
		l->kept[j] = 0;
	}
}

static inline scan_f32x16 scan_select(scan_i32x16 mask, scan_f32x16 a,
				      scan_f32x16 b)
{
	return (scan_f32x16)(((scan_i32x16)a & mask) | ((scan_i32x16)b & ~mask));
}

/* 16 values at x (unaligned). */
static inline void scan_lanes_add(struct scan_lanes *l, const float *x)
{
	scan_f32x16 v;

	memcpy(&v, x, sizeof(v));
	l->lo = scan_select(v < l->lo, v, l->lo);
	l->hi = scan_select(v > l->hi, v, l->hi);
	l->bad -= v != v;      /* a true comparison is -1 */
}

/* 16 values at x of which those with keep[j] != 0 count; the others
 * count as NaN (bad) and not as kept. */
static inline void scan_lanes_add_masked(struct scan_lanes *l, const float *x,
					 const uint8_t *keep)
{
	scan_f32x16 v, nan;
	scan_u8x16 kb;
	scan_i32x16 km;

	memcpy(&v, x, sizeof(v));
	memcpy(&kb, keep, sizeof(kb));
	km = __builtin_convertvector(kb, scan_i32x16) != 0;
	for (int j = 0; j < SCAN_LANES; j++)
		nan[j] = NAN;
	v = scan_select(km, v, nan);
	l->kept -= km;
	l->lo = scan_select(v < l->lo, v, l->lo);
	l->hi = scan_select(v > l->hi, v, l->hi);
	l->bad -= v != v;
}

/* One value (tails), in lane 0. */
static inline void scan_lanes_add_one(struct scan_lanes *l, float v, int kept)
{
	l->lo[0] = v < l->lo[0] ? v : l->lo[0];
	l->hi[0] = v > l->hi[0] ? v : l->hi[0];
	l->bad[0] += v != v;
	l->kept[0] += kept;
}

/* Fold the lanes: min, max, bad and kept totals. */
static inline void scan_lanes_fold(const struct scan_lanes *l, float *min,
				   float *max, uint64_t *bad, uint64_t *kept)
{
	float mn = INFINITY, mx = -INFINITY;
	uint64_t b = 0, k = 0;

	for (int j = 0; j < SCAN_LANES; j++) {
		mn = l->lo[j] < mn ? l->lo[j] : mn;
		mx = l->hi[j] > mx ? l->hi[j] : mx;
		b += (uint32_t)l->bad[j];
		k += (uint32_t)l->kept[j];
	}
	*min = mn;
	*max = mx;
	*bad = b;
	*kept = k;
}

struct scan_stats {
	float min, max;       /* over finite kept values; +inf / -inf if none */
	uint64_t finite;      /* kept finite values */
	uint64_t nan, inf;    /* kept non-finite values */
};

/*
 * Exact statistics of x[0..n), counting only x[i] with keep[i] != 0 when
 * keep is not NULL.
 */
void scan_range(const float *x, const uint8_t *keep, size_t n,
		struct scan_stats *st);
/* The same with the tensor split over up to `threads` OpenMP threads. */
void scan_range_mt(const float *x, const uint8_t *keep, size_t n, int threads,
		   struct scan_stats *st);

/* Fold b into a (as if a's and b's values had been scanned together). */
void scan_stats_merge(struct scan_stats *a, const struct scan_stats *b);

/* Empty statistics (min +inf, max -inf, zero counts). */
void scan_stats_init(struct scan_stats *st);

#endif
