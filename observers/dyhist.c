/*
 * Dyadic histograms; see dyhist.h for the layout rule that makes them
 * exactly mergeable.
 *
 * An update first bins the batch with the current layout, optimistically:
 * once the range has settled nearly every batch fits, and binning and the
 * min/max come out of one pass.  Elements outside the window land in the
 * kernel's dump slot; only then is the batch binned a second time, after
 * the layout has grown to hold it.  Because coarse cells are unions of
 * fine ones, counts taken at the old layout stay valid when only the
 * exponent grows, so a batch is re-read only when it truly did not fit.
 */
#include "observers/dyhist.h"

#include <math.h>
#include <string.h>

#include "observers/bin.h"

/* Finest cell: below float32's smallest subnormal spacing by 2^23. */
#define DY_EXP_MIN (-149 - 23)

/* Grid cell of v at exp: floor(v / 2^exp), exact in double (as the kernel). */
static int64_t dy_coord(float v, int exp)
{
	return (int64_t)floor((double)v * ldexp(1.0, -exp));
}

/* floor(v / 2^k) for k >= 0 without shifting negative numbers. */
static int64_t floor_shift(int64_t v, int k)
{
	if (k >= 62)
		return v < 0 ? -1 : 0;
	return v >= 0 ? v >> k : -((-v - 1) >> k) - 1;
}

/* The exponent floor for data whose largest magnitude is amax. */
static int dy_exp_floor(float amax)
{
	int e;

	if (!(amax > 0.0f))
		return DY_EXP_MIN;
	e = ilogbf(amax) - 23;
	return e < DY_EXP_MIN ? DY_EXP_MIN : e;
}

/* Canonical layout of data in [mn, mx], not finer than from_exp. */
static void dy_layout(const struct dyhist *h, float mn, float mx, int from_exp,
		      int *exp, int64_t *origin)
{
	float amax = fabsf(mn) > fabsf(mx) ? fabsf(mn) : fabsf(mx);
	int e = dy_exp_floor(amax);

	if (e < from_exp)
		e = from_exp;
	for (;; e++) {
		int64_t lo, hi;

		if (h->of_abs) {
			lo = 0;
			hi = dy_coord(amax, e);
		} else {
			lo = dy_coord(mn, e);
			hi = dy_coord(mx, e);
		}
		if (hi - lo < h->bins) {
			*exp = e;
			*origin = lo;
			return;
		}
	}
}

/*
 * Move the counts to layout (exp, origin), exp >= h->exp, which must hold
 * all counted data.  In place: first merge cells in aligned groups towards
 * index 0 (each cell moves to an index <= its own), then shift.
 */
static void dy_relayout(struct dyhist *h, int exp, int64_t origin)
{
	int k = exp - h->exp;
	int64_t d;

	if (k > 0) {
		int64_t base = floor_shift(h->origin, k);

		for (int i = 0; i < h->bins; i++) {
			uint64_t c = h->counts[i];

			if (!c)
				continue;
			h->counts[i] = 0;
			h->counts[floor_shift(h->origin + i, k) - base] += c;
		}
		h->origin = base;
		h->exp = exp;
	}
	d = h->origin - origin; /* old index i is new index i + d */
	if (d >= h->bins || -d >= h->bins) {
		/* only an empty histogram can move this far */
		memset(h->counts, 0, (size_t)h->bins * sizeof(uint64_t));
	} else if (d > 0) {
		/* the data fits, so the last d cells are empty */
		memmove(h->counts + d, h->counts, (size_t)(h->bins - d) * sizeof(uint64_t));
		memset(h->counts, 0, (size_t)d * sizeof(uint64_t));
	} else if (d < 0) {
		memmove(h->counts, h->counts - d, (size_t)(h->bins + d) * sizeof(uint64_t));
		memset(h->counts + h->bins + d, 0, (size_t)(-d) * sizeof(uint64_t));
	}
	h->origin = origin;
}

void dyhist_init(struct dyhist *h, int bins, bool of_abs, uint64_t *storage)
{
	h->bins = bins;
	h->of_abs = of_abs;
	h->counts = storage;
	dyhist_reset(h);
}

void dyhist_reset(struct dyhist *h)
{
	h->empty = true;
	h->exp = DY_EXP_MIN;
	h->origin = 0;
	h->min = INFINITY;
	h->max = -INFINITY;
	h->total = 0;
	memset(h->counts, 0, (size_t)h->bins * sizeof(uint64_t));
}

static void dy_pass(const struct dyhist *h, struct bin_planes *p,
		    const float *x, const uint8_t *keep, size_t n,
		    struct bin_result *res)
{
	bin_pass_dyadic(p, x, keep, n, h->exp, h->origin, h->of_abs, res);
}

static void dy_accumulate(struct dyhist *h, struct bin_planes *p, uint64_t finite)
{
	const uint32_t *c = bin_planes_fold(p);

	for (int i = 0; i < h->bins; i++)
		h->counts[i] += c[i];
	h->total += finite;
}

/*
 * Exact statistics of the batch from a pass's result: the pass already
 * knows them unless an infinity hides behind its min/max.
 */
static void batch_stats(const struct bin_result *res, const float *x,
			const uint8_t *keep, size_t n, int threads,
			struct scan_stats *st)
{
	if (res->min == -INFINITY || res->max == INFINITY) {
		scan_range_mt(x, keep, n, threads, st);
		return;
	}
	st->min = res->min;
	st->max = res->max;
	st->inf = 0;
	st->nan = res->nanlike - (n - res->kept);
	st->finite = res->kept - st->nan;
}

static enum qcal_status dy_chunk(struct dyhist *h, const float *x,
				 const uint8_t *keep, size_t n, int threads,
				 struct scan_stats *st, struct qcal_err *err)
{
	struct bin_planes p;
	struct bin_result res;
	enum qcal_status status;
	float mn, mx;
	int exp;
	int64_t origin;

	status = bin_planes_init(&p, h->bins, n, threads, err);
	if (status != QCAL_OK)
		return status;
	if (!h->empty) {
		uint64_t dumped;

		dy_pass(h, &p, x, keep, n, &res);
		batch_stats(&res, x, keep, n, threads, st);
		dumped = bin_planes_dumped(&p);
		if (dumped == (n - res.kept) + st->nan + st->inf) {
			/* every finite value fitted the current window */
			dy_accumulate(h, &p, st->finite);
			if (st->finite) {
				mn = st->min < h->min ? st->min : h->min;
				mx = st->max > h->max ? st->max : h->max;
				dy_layout(h, mn, mx, h->exp, &exp, &origin);
				dy_relayout(h, exp, origin);
				h->min = mn;
				h->max = mx;
			}
			goto out_free_planes;
		}
		bin_planes_clear(&p);
		mn = st->min < h->min ? st->min : h->min;
		mx = st->max > h->max ? st->max : h->max;
		dy_layout(h, mn, mx, h->exp, &exp, &origin);
		dy_relayout(h, exp, origin);
	} else {
		scan_range_mt(x, keep, n, threads, st);
		if (!st->finite)
			goto out_free_planes;
		mn = st->min;
		mx = st->max;
		dy_layout(h, mn, mx, DY_EXP_MIN, &exp, &origin);
		h->exp = exp;
		h->origin = origin;
		h->empty = false;
	}
	dy_pass(h, &p, x, keep, n, &res);
	dy_accumulate(h, &p, st->finite);
	h->min = mn;
	h->max = mx;
out_free_planes:
	bin_planes_free(&p);
	return QCAL_OK;
}

enum qcal_status dyhist_update(struct dyhist *h, const float *x,
			       const uint8_t *keep, size_t n, int threads,
			       struct scan_stats *st, struct qcal_err *err)
{
	scan_stats_init(st);
	for (size_t off = 0; off < n; off += BIN_MAX_CHUNK) {
		size_t m = n - off < BIN_MAX_CHUNK ? n - off : BIN_MAX_CHUNK;
		struct scan_stats part;
		enum qcal_status status;

		status = dy_chunk(h, x + off, keep ? keep + off : NULL, m, threads,
				  &part, err);
		if (status != QCAL_OK)
			return status;
		scan_stats_merge(st, &part);
	}
	return QCAL_OK;
}

void dyhist_merge(struct dyhist *dst, const struct dyhist *src)
{
	float mn, mx;
	int exp, k;
	int64_t origin;

	if (src->empty)
		return;
	if (dst->empty) {
		memcpy(dst->counts, src->counts, (size_t)src->bins * sizeof(uint64_t));
		dst->exp = src->exp;
		dst->origin = src->origin;
		dst->min = src->min;
		dst->max = src->max;
		dst->total = src->total;
		dst->empty = false;
		return;
	}
	mn = src->min < dst->min ? src->min : dst->min;
	mx = src->max > dst->max ? src->max : dst->max;
	dy_layout(dst, mn, mx, src->exp > dst->exp ? src->exp : dst->exp, &exp, &origin);
	dy_relayout(dst, exp, origin);
	k = exp - src->exp;
	for (int i = 0; i < src->bins; i++)
		if (src->counts[i])
			dst->counts[floor_shift(src->origin + i, k) - origin] += src->counts[i];
	dst->min = mn;
	dst->max = mx;
	dst->total += src->total;
}

double dyhist_width(const struct dyhist *h)
{
	return ldexp(1.0, h->exp);
}

double dyhist_edge(const struct dyhist *h, int64_t i)
{
	return ldexp((double)(h->origin + i), h->exp);
}

int dyhist_used(const struct dyhist *h)
{
	int used = h->bins;

	while (used > 0 && h->counts[used - 1] == 0)
		used--;
	return used;
}
