/*
 * torch's HistogramObserver; see torchhist.h.
 *
 * torch materialises the upsampled histogram (bins * downsample_rate
 * floats, unbounded when the range grows a lot) and takes a cumulative sum
 * in double.  Here the same cumulative sums come from a closed form over
 * the old bins (a prefix sum plus a partial bin), so re-binning costs
 * O(bins) and no memory beyond the new histogram, and the sums are the
 * ones torch's double cumsum produces whenever they are exact in double
 * (all counts below 2^45 in units of 2^-7 per re-binning).
 *
 * Batches that fit the current range - nearly all of them once the range
 * has settled - are binned and min/max-scanned in one pass; torch's
 * "combined range equals the current range" test then accepts them as
 * they are.  Only a batch that widens the range is binned again.
 */
#include "observers/torchhist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers/bin.h"

/* Beyond this downsample rate the old range is a point in the new one. */
#define TH_MAX_DOWNSAMPLE 1099511627776.0f /* 2^40 */

void torchhist_init(struct torchhist *h, int bins, int upsample, float *storage)
{
	h->bins = bins;
	h->upsample = upsample;
	h->hist = storage;
	torchhist_reset(h);
}

void torchhist_reset(struct torchhist *h)
{
	h->empty = true;
	h->min = INFINITY;
	h->max = -INFINITY;
	memset(h->hist, 0, (size_t)h->bins * sizeof(float));
}

/*
 * torch.histc's outer edges for a requested [lo, hi]: a single value v
 * gets [v - 1, v + 1] (computed in double, as histc does).
 */
static void histc_edges(float lo, float hi, float *elo, float *ehi)
{
	if (lo == hi) {
		*elo = (float)((double)lo - 1.0);
		*ehi = (float)((double)hi + 1.0);
		if (*elo == *ehi) { /* |v| >= 2^25: +-1 is lost in float32 */
			*elo = nextafterf(lo, -INFINITY);
			*ehi = nextafterf(hi, INFINITY);
		}
	} else {
		*elo = lo;
		*ehi = hi;
	}
}

void torchhist_edges(const struct torchhist *h, float *lo, float *hi)
{
	histc_edges(h->min, h->max, lo, hi);
}

/* The bin torch.histc gives a finite v in [lo, hi] (hi > lo). */
static int histc_bin(float v, float lo, float hi, int bins)
{
	float nb = (float)bins;
	float f = ((v - lo) * nb) / (hi - lo);

	f = f < nb ? f : nb - 1.0f;
	f = f > 0.0f ? f : 0.0f;
	return (int)f;
}

/*
 * Counts of x over torch.histc's grid for [lo, hi] into batch[0..bins]
 * (slot bins: dumped), plus what the passes saw.
 */
static enum qcal_status histc_batch(const struct torchhist *h, const float *x,
				    const uint8_t *keep, size_t n, int threads,
				    float lo, float hi, uint64_t *batch,
				    struct bin_result *res, struct qcal_err *err)
{
	float elo, ehi;

	histc_edges(lo, hi, &elo, &ehi);
	memset(batch, 0, ((size_t)h->bins + 1) * sizeof(uint64_t));
	res->min = INFINITY;
	res->max = -INFINITY;
	res->nanlike = 0;
	res->kept = 0;
	for (size_t off = 0; off < n; off += BIN_MAX_CHUNK) {
		size_t m = n - off < BIN_MAX_CHUNK ? n - off : BIN_MAX_CHUNK;
		struct bin_planes p;
		struct bin_result part;
		enum qcal_status status;
		const uint32_t *c;

		status = bin_planes_init(&p, h->bins, m, threads, err);
		if (status != QCAL_OK)
			return status;
		bin_pass_linear(&p, x + off, keep ? keep + off : NULL, m, elo, ehi, &part);
		c = bin_planes_fold(&p);
		for (int i = 0; i <= h->bins; i++)
			batch[i] += c[i];
		bin_planes_free(&p);
		res->min = part.min < res->min ? part.min : res->min;
		res->max = part.max > res->max ? part.max : res->max;
		res->nanlike += part.nanlike;
		res->kept += part.kept;
	}
	return QCAL_OK;
}

/*
 * torch's _adjust_min_max for a combined range [cmin, cmax] (float32
 * tensor arithmetic).  false when the downsample rate is out of reach
 * (the old range is vanishingly small against the new one).
 */
static bool th_adjust(const struct torchhist *h, float cmin, float cmax,
		      float *cmax_out, int64_t *down, int64_t *start)
{
	float hbw = (h->max - h->min) / (float)((int64_t)h->bins * h->upsample);
	float width = (float)h->bins * hbw;
	float ratio = (cmax - cmin) / width;
	float rate, e;

	if (!(hbw > 0.0f) || !(ratio <= TH_MAX_DOWNSAMPLE))
		return false;
	rate = ceilf(ratio);
	e = rate * width - (cmax - cmin);
	*cmax_out = cmax + e;
	*down = (int64_t)rate;
	*start = (int64_t)nearbyintf((h->min - cmin) / hbw);
	return true;
}

/*
 * torch's _combine_histograms: out[k] = new[k] + the old histogram's mass
 * between the new bin edges.  torch repeats every old bin `upsample` times
 * (each copy holding the whole count), places them at sub-bin start, takes
 * the cumulative sum at the end of every new bin and divides differences
 * by `upsample`.  That cumulative sum at sub-bin q is U * (old bins fully
 * before q) + (sub-bins into the current one) * its count; torch's float32
 * copy of the previous sum is kept.
 */
static void th_combine(const struct torchhist *h, const uint64_t *batch,
		       int64_t down, int64_t start, float *out)
{
	const int64_t U = h->upsample, fine = (int64_t)h->bins * U;
	double total = 0, run = 0, prev = 0;
	int64_t next = 0;

	for (int i = 0; i < h->bins; i++)
		total += h->hist[i];
	total *= (double)U;
	for (int k = 0; k < h->bins; k++) {
		int64_t q = (int64_t)(k + 1) * down - start;
		double cum;

		if (q <= 0) {
			cum = 0;
		} else if (q >= fine || k == h->bins - 1) {
			/* torch raises if the old range overhangs the new by a
			 * sub-bin; keep the mass in the last bin instead */
			cum = total;
		} else {
			int64_t b = q / U, r = q % U;

			while (next < b)
				run += h->hist[next++];
			cum = (double)U * run + (double)r * (double)h->hist[b];
		}
		out[k] = (float)batch[k] + (float)((cum - prev) / (double)U);
		prev = (double)(float)cum;
	}
}

/* Exact batch statistics from a pass (see dyhist.c). */
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

static double hist_sum(const float *hist, int bins)
{
	double s = 0;

	for (int i = 0; i < bins; i++)
		s += hist[i];
	return s;
}

/*
 * First batch, or a state holding a single value: histc over the batch's
 * range (widened to hold that value, whose mass torch would drop).
 */
static enum qcal_status th_restart(struct torchhist *h, const float *x,
				   const uint8_t *keep, size_t n, int threads,
				   uint64_t *batch, struct scan_stats *st,
				   struct qcal_err *err)
{
	struct bin_result res;
	enum qcal_status status;
	double mass = 0;
	float lo, hi, v = h->min;

	scan_range_mt(x, keep, n, threads, st);
	if (!st->finite)
		return QCAL_OK;
	lo = st->min;
	hi = st->max;
	if (!h->empty) {
		mass = hist_sum(h->hist, h->bins);
		lo = v < lo ? v : lo;
		hi = v > hi ? v : hi;
	}
	status = histc_batch(h, x, keep, n, threads, lo, hi, batch, &res, err);
	if (status != QCAL_OK)
		return status;
	for (int i = 0; i < h->bins; i++)
		h->hist[i] = (float)batch[i];
	if (mass > 0) {
		float elo, ehi;

		histc_edges(lo, hi, &elo, &ehi);
		h->hist[histc_bin(v, elo, ehi, h->bins)] += (float)mass;
	}
	h->min = lo;
	h->max = hi;
	h->empty = false;
	return QCAL_OK;
}

enum qcal_status torchhist_update(struct torchhist *h, const float *x,
				  const uint8_t *keep, size_t n, int threads,
				  struct scan_stats *st, struct qcal_err *err)
{
	struct bin_result res;
	enum qcal_status status;
	uint64_t *batch;
	float *out, cmin, cmax, cmax_adj;
	int64_t down, start;

	scan_stats_init(st);
	if (n == 0)
		return QCAL_OK;
	/* batch counts (bins + 1) and a new histogram (bins) */
	batch = malloc(((size_t)h->bins + 1) * sizeof(uint64_t) +
		       (size_t)h->bins * sizeof(float));
	if (!batch)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "mse observer scratch for %d bins: out of memory",
				    h->bins);
	out = (float *)(batch + h->bins + 1);
	if (h->empty || h->min == h->max) {
		status = th_restart(h, x, keep, n, threads, batch, st, err);
		goto out_free_batch;
	}
	status = histc_batch(h, x, keep, n, threads, h->min, h->max, batch, &res, err);
	if (status != QCAL_OK)
		goto out_free_batch;
	batch_stats(&res, x, keep, n, threads, st);
	if (!st->finite)
		goto out_free_batch;
	cmin = st->min < h->min ? st->min : h->min;
	cmax = st->max > h->max ? st->max : h->max;
	if (!th_adjust(h, cmin, cmax, &cmax_adj, &down, &start)) {
		/* range grew by > 2^40: the old histogram is a point mass */
		float v = h->min + (h->max - h->min) / 2.0f;
		double mass = hist_sum(h->hist, h->bins);

		status = histc_batch(h, x, keep, n, threads, cmin, cmax, batch, &res, err);
		if (status != QCAL_OK)
			goto out_free_batch;
		for (int i = 0; i < h->bins; i++)
			h->hist[i] = (float)batch[i];
		h->hist[histc_bin(v, cmin, cmax, h->bins)] += (float)mass;
		h->min = cmin;
		h->max = cmax;
		goto out_free_batch;
	}
	if (cmin == h->min && cmax_adj == h->max) {
		/* the range stays: this pass's counts are torch's histc */
		for (int i = 0; i < h->bins; i++)
			h->hist[i] = (float)batch[i] + h->hist[i];
		goto out_free_batch;
	}
	status = histc_batch(h, x, keep, n, threads, cmin, cmax_adj, batch, &res, err);
	if (status != QCAL_OK)
		goto out_free_batch;
	th_combine(h, batch, down, start, out);
	memcpy(h->hist, out, (size_t)h->bins * sizeof(float));
	h->min = cmin;
	h->max = cmax_adj;
out_free_batch:
	free(batch);
	return status;
}

/*
 * Spread src's bins over the grid [lo, hi) of nb bins in proportion to
 * their overlap (uniform density inside each source bin), adding to acc.
 */
static void spread_bins(const struct torchhist *src, double lo, double hi,
			int nb, double *acc)
{
	double scale = nb / (hi - lo);

	if (src->min == src->max) {
		acc[histc_bin(src->min, (float)lo, (float)hi, nb)] +=
			hist_sum(src->hist, src->bins);
		return;
	}
	for (int i = 0; i < src->bins; i++) {
		double c = src->hist[i], a, b;
		double w = ((double)src->max - (double)src->min) / src->bins;

		if (c == 0)
			continue;
		a = ((double)src->min + i * w - lo) * scale;
		b = ((double)src->min + (i + 1) * w - lo) * scale;
		a = a < 0 ? 0 : a > nb ? nb : a;
		b = b < 0 ? 0 : b > nb ? nb : b;
		if (b <= a) {
			int k = (int)a < nb ? (int)a : nb - 1;

			acc[k] += c;
			continue;
		}
		for (int k = (int)a; k < nb && k < b; k++) {
			double lo_k = k > a ? k : a, hi_k = k + 1 < b ? k + 1 : b;

			acc[k] += c * (hi_k - lo_k) / (b - a);
		}
	}
}

enum qcal_status torchhist_merge(struct torchhist *dst,
				 const struct torchhist *src,
				 struct qcal_err *err)
{
	double *acc;
	uint64_t *zero;
	float *out, cmin, cmax, cmax_adj;
	int64_t down, start;
	int nb = dst->bins;

	if (src->empty)
		return QCAL_OK;
	if (dst->empty) {
		memcpy(dst->hist, src->hist, (size_t)nb * sizeof(float));
		dst->min = src->min;
		dst->max = src->max;
		dst->empty = false;
		return QCAL_OK;
	}
	acc = calloc((size_t)nb, sizeof(double) + sizeof(float) + sizeof(uint64_t));
	if (!acc)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "mse observer merge scratch for %d bins: out of memory",
				    nb);
	zero = (uint64_t *)(acc + nb);
	out = (float *)(zero + nb);
	cmin = src->min < dst->min ? src->min : dst->min;
	cmax = src->max > dst->max ? src->max : dst->max;
	if (dst->min == dst->max || cmin == cmax ||
	    !th_adjust(dst, cmin, cmax, &cmax_adj, &down, &start)) {
		/* dst is a point (or a point in the new range): spread both */
		float elo, ehi;
		double mass = hist_sum(dst->hist, nb);
		float v = dst->min + (dst->max - dst->min) / 2.0f;

		histc_edges(cmin, cmax, &elo, &ehi);
		acc[histc_bin(v, elo, ehi, nb)] += mass;
		spread_bins(src, elo, ehi, nb, acc);
		for (int i = 0; i < nb; i++)
			dst->hist[i] = (float)acc[i];
		dst->min = cmin;
		dst->max = cmax;
		goto out_free_acc;
	}
	spread_bins(src, cmin, cmax_adj, nb, acc);
	if (cmin == dst->min && cmax_adj == dst->max) {
		for (int i = 0; i < nb; i++)
			dst->hist[i] = dst->hist[i] + (float)acc[i];
	} else {
		th_combine(dst, zero, down, start, out);
		for (int i = 0; i < nb; i++)
			dst->hist[i] = out[i] + (float)acc[i];
		dst->min = cmin;
		dst->max = cmax_adj;
	}
out_free_acc:
	free(acc);
	return QCAL_OK;
}

/* torch's div(a, b, rounding_mode='floor') for float32 (c10::div_floor_floating). */
static float div_floor(float a, float b)
{
	float mod = fmodf(a, b), div, fl;

	div = (a - mod) / b;
	if (mod != 0.0f && (b < 0.0f) != (mod < 0.0f))
		div -= 1.0f;
	if (div == 0.0f)
		return copysignf(0.0f, a / b);
	fl = floorf(div);
	if (div - fl > 0.5f)
		fl += 1.0f;
	return fl;
}

static float clampf(float v, float lo, float hi)
{
	v = v < lo ? lo : v;
	return v > hi ? hi : v;
}

double torchhist_l2_error(const struct torchhist *h, int start, int end,
			  double dst_nbins)
{
	double bin_width = ((double)h->max - (double)h->min) / h->bins;
	double dbw = bin_width * (double)(end - start + 1) / dst_nbins;
	float bw, dw, half, nhalf, half3, nhalf3, mid, top;
	double norm = 0;

	if (dbw == 0.0)
		return 0.0;
	/* torch's Python floats become float32 when they meet the tensors */
	bw = (float)bin_width;
	dw = (float)dbw;
	half = (float)(dbw / 2);
	nhalf = (float)(-dbw / 2);
	half3 = half * half * half;
	nhalf3 = nhalf * nhalf * nhalf;
	mid = (half3 - nhalf3) / 3.0f;
	top = (float)(dst_nbins - 1);
	for (int i = 0; i < h->bins; i++) {
		float density = h->hist[i] / bw, b0, b1, db, de, d1, d2, n;

		if (density == 0.0f)
			continue; /* every term is density * (finite) */
		b0 = (float)(i - start) * bw;
		b1 = b0 + bw;
		db = clampf(div_floor(b0, dw), 0.0f, top);
		de = clampf(div_floor(b1, dw), 0.0f, top);
		d1 = b0 - (db + 0.5f) * dw;
		n = density * ((half3 - d1 * d1 * d1) / 3.0f);
		n = n + (de - db - 1.0f) * (density * mid);
		d2 = b1 - (de * dw + half);
		n = n + density * ((d2 * d2 * d2 - nhalf3) / 3.0f);
		norm += n;
	}
	/* torch's result is a float32 sum */
	return (double)(float)norm;
}

enum qcal_status torchhist_search(const struct torchhist *h, double dst_nbins,
				  float *lo, float *hi, struct qcal_err *err)
{
	const double step = 1e-5;
	float bin_width = (h->max - h->min) / (float)h->bins;
	double total, acc = 0, alpha = 0.0, beta = 1.0, norm_min = INFINITY;
	int start = 0, end = h->bins - 1;
	float *csum = malloc((size_t)h->bins * sizeof(float));

	if (!csum)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "mse observer search scratch for %d bins: out of memory",
				    h->bins);
	/* torch.cumsum of float32 accumulates in double */
	for (int i = 0; i < h->bins; i++) {
		acc += h->hist[i];
		csum[i] = (float)acc;
	}
	total = (double)(float)hist_sum(h->hist, h->bins);
	while (alpha < beta) {
		double next_alpha = alpha + step, next_beta = beta - step;
		/* Python float * total, compared with float32 cSum: in float32 */
		float ta = (float)(next_alpha * total), tb = (float)(next_beta * total);
		int l = start, r = end, next_start = start, next_end = end;
		double norm;

		while (l < end && csum[l] < ta)
			l++;
		while (r > start && csum[r] > tb)
			r--;
		if (l - start > end - r) {
			next_start = l;
			alpha = next_alpha;
		} else {
			next_end = r;
			beta = next_beta;
		}
		if (next_start == start && next_end == end)
			continue;
		norm = torchhist_l2_error(h, next_start, next_end, dst_nbins);
		if (norm > norm_min)
			break;
		norm_min = norm;
		start = next_start;
		end = next_end;
	}
	free(csum);
	*lo = h->min + bin_width * (float)start;
	*hi = h->min + bin_width * (float)(end + 1);
	return QCAL_OK;
}
