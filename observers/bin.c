/*
 * Binning kernels; see bin.h.  This file alone is compiled with
 * -fno-trapping-math (observers/meson.build): GCC only vectorises floor()
 * and the float-to-int conversions when it may assume that floating-point
 * operations do not trap.  That flag changes no computed value (rounding,
 * NaN and signed-zero semantics stay IEEE; nothing here reads exception
 * flags).  One generic, always-inlined pass is
 * specialised by constant arguments into six loops (dyadic signed, dyadic
 * |x|, linear; each with and without a mask), so that each variant
 * vectorises on its own and no branch on the mode sits in a hot loop.
 *
 * A pass works in blocks of BIN_BLOCK elements: first the indices of the
 * block (vector code, into a small stack array), then the increments
 * (scalar, rotating over the planes).  Splitting the two lets the index
 * loop vectorise; the block is small enough to stay in L1.
 */
#include "observers/bin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers/scan.h"

#define BIN_BLOCK 512
#define BIN_PLANES 8
/* 8 planes pay off once a batch has this many elements per histogram slot */
#define BIN_PLANES_MIN_FILL 16
/* and only while the planes fit in L2 */
#define BIN_PLANES_MAX_BYTES ((size_t)1 << 20)

enum pass_mode { PASS_DYADIC, PASS_DYADIC_ABS, PASS_LINEAR };

enum qcal_status bin_planes_init(struct bin_planes *p, int bins, size_t n,
				 struct qcal_err *err)
{
	/* planes start on a fresh cache line: stride a multiple of 16 counters */
	size_t stride = ((size_t)bins + 1 + 15) & ~(size_t)15;
	int planes = 1;

	if (n / BIN_PLANES_MIN_FILL >= (size_t)bins + 1 &&
	    stride * BIN_PLANES * sizeof(uint32_t) <= BIN_PLANES_MAX_BYTES)
		planes = BIN_PLANES;
	p->bins = bins;
	p->planes = planes;
	p->stride = stride;
	p->c = calloc(stride * (size_t)planes, sizeof(uint32_t));
	if (!p->c)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "observer scratch of %d x %zu counters: out of memory",
				    planes, stride);
	return QCAL_OK;
}

void bin_planes_free(struct bin_planes *p)
{
	if (p) {
		free(p->c);
		p->c = NULL;
	}
}

void bin_planes_clear(struct bin_planes *p)
{
	memset(p->c, 0, p->stride * (size_t)p->planes * sizeof(uint32_t));
}

const uint32_t *bin_planes_fold(struct bin_planes *p)
{
	for (int k = 1; k < p->planes; k++) {
		const uint32_t *src = p->c + (size_t)k * p->stride;

		for (int i = 0; i <= p->bins; i++)
			p->c[i] += src[i];
		memset(p->c + (size_t)k * p->stride, 0, p->stride * sizeof(uint32_t));
	}
	p->planes = 1;
	return p->c;
}

/*
 * Indices of the block x[0..m).  Dyadic modes: a = 2^-exp, b = origin;
 * linear: a = lo, b = hi (floats).  The loop is branch-free (bitwise &,
 * selects) so that it vectorises.  The dyadic index is computed in double,
 * where v * 2^-exp and the subtraction of the integer origin are exact:
 * the bin is the exact floor(v / 2^exp) - origin for every float v, with
 * no underflow at any exponent the histogram uses.
 */
static inline __attribute__((always_inline)) void
index_block(const float *restrict x, const uint8_t *restrict keep, size_t m,
	    double a, double b, uint32_t nb, const enum pass_mode mode,
	    const bool masked, uint32_t *restrict idx)
{
	const float nbf = (float)nb, lo = (float)a, hi = (float)b;
	const double nbd = (double)nb;

	for (size_t i = 0; i < m; i++) {
		float v = x[i];
		uint32_t u;

		if (mode == PASS_LINEAR) {
			/* torch.histc: ((v - lo) * bins) / (hi - lo), hi itself in the last bin */
			float f = ((v - lo) * nbf) / (hi - lo);

			f = f < nbf ? f : nbf - 1.0f;
			f = (v >= lo) & (v <= hi) ? f : nbf;
			u = (uint32_t)f;
		} else {
			double t = (double)(mode == PASS_DYADIC_ABS ? fabsf(v) : v);
			double d = floor(t * a) - b;

			/* NaN, Inf and values outside the window fail the test */
			d = (d >= 0.0) & (d < nbd) ? d : nbd;
			u = (uint32_t)d;
		}
		if (masked)
			u = keep[i] ? u : nb;
		idx[i] = u;
	}
}

static void scatter(uint32_t *c, size_t stride, int planes, const uint32_t *idx,
		    size_t m)
{
	size_t i = 0;

	if (planes == BIN_PLANES) {
		uint32_t *c0 = c, *c1 = c + stride, *c2 = c + 2 * stride,
			 *c3 = c + 3 * stride, *c4 = c + 4 * stride,
			 *c5 = c + 5 * stride, *c6 = c + 6 * stride,
			 *c7 = c + 7 * stride;

		for (; i + BIN_PLANES <= m; i += BIN_PLANES) {
			c0[idx[i]]++;
			c1[idx[i + 1]]++;
			c2[idx[i + 2]]++;
			c3[idx[i + 3]]++;
			c4[idx[i + 4]]++;
			c5[idx[i + 5]]++;
			c6[idx[i + 6]]++;
			c7[idx[i + 7]]++;
		}
	}
	for (; i < m; i++)
		c[idx[i]]++;
}

static inline __attribute__((always_inline)) void
pass_generic(struct bin_planes *p, const float *restrict x,
	     const uint8_t *restrict keep, size_t n, double a, double b,
	     const enum pass_mode mode, const bool masked,
	     struct bin_result *res)
{
	struct scan_lanes l;
	uint32_t idx[BIN_BLOCK];
	uint64_t kept;

	scan_lanes_init(&l);
	for (size_t off = 0; off < n; off += BIN_BLOCK) {
		size_t m = n - off < BIN_BLOCK ? n - off : BIN_BLOCK;
		const float *xb = x + off;
		const uint8_t *kb = masked ? keep + off : NULL;
		size_t i = 0;

		index_block(xb, kb, m, a, b, (uint32_t)p->bins, mode, masked,
			    idx);
		/* the block is in L1 now: its min/max/NaN cost little */
		for (; i + SCAN_LANES <= m; i += SCAN_LANES) {
			if (masked)
				scan_lanes_add_masked(&l, xb + i, kb + i);
			else
				scan_lanes_add(&l, xb + i);
		}
		for (; i < m; i++) {
			int k = !masked || kb[i];

			scan_lanes_add_one(&l, k ? xb[i] : NAN, k);
		}
		scatter(p->c, p->stride, p->planes, idx, m);
	}
	scan_lanes_fold(&l, &res->min, &res->max, &res->nanlike, &kept);
	res->kept = masked ? kept : n;
}

static void __attribute__((noinline))
pass_dyadic(struct bin_planes *p, const float *x, size_t n, double scale,
	    double origin, struct bin_result *res)
{
	pass_generic(p, x, NULL, n, scale, origin, PASS_DYADIC, false, res);
}

static void __attribute__((noinline))
pass_dyadic_abs(struct bin_planes *p, const float *x, size_t n, double scale,
		struct bin_result *res)
{
	pass_generic(p, x, NULL, n, scale, 0.0, PASS_DYADIC_ABS, false, res);
}

static void __attribute__((noinline))
pass_dyadic_masked(struct bin_planes *p, const float *x, const uint8_t *keep,
		   size_t n, double scale, double origin, bool of_abs,
		   struct bin_result *res)
{
	if (of_abs)
		pass_generic(p, x, keep, n, scale, origin, PASS_DYADIC_ABS, true,
			     res);
	else
		pass_generic(p, x, keep, n, scale, origin, PASS_DYADIC, true, res);
}

void bin_pass_dyadic(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, double scale, int64_t origin, bool of_abs,
		     struct bin_result *res)
{
	if (keep)
		pass_dyadic_masked(p, x, keep, n, scale, (double)origin, of_abs,
				   res);
	else if (of_abs)
		pass_dyadic_abs(p, x, n, scale, res);
	else
		pass_dyadic(p, x, n, scale, (double)origin, res);
}

static void __attribute__((noinline))
pass_linear(struct bin_planes *p, const float *x, size_t n, float lo, float hi,
	    struct bin_result *res)
{
	pass_generic(p, x, NULL, n, lo, hi, PASS_LINEAR, false, res);
}

static void __attribute__((noinline))
pass_linear_masked(struct bin_planes *p, const float *x, const uint8_t *keep,
		   size_t n, float lo, float hi, struct bin_result *res)
{
	pass_generic(p, x, keep, n, lo, hi, PASS_LINEAR, true, res);
}

void bin_pass_linear(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, float lo, float hi, struct bin_result *res)
{
	if (keep)
		pass_linear_masked(p, x, keep, n, lo, hi, res);
	else
		pass_linear(p, x, n, lo, hi, res);
}
