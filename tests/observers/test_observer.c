/*
 * The observer API's contracts, for every kind:
 *
 *  - names, option validation and defaults;
 *  - no finite data -> QCAL_ESTATE; NaN/Inf excluded and counted, giving
 *    the same qparams as the cleaned data; masked updates equal updates of
 *    the compacted data;
 *  - merge: exact (bit-identical qparams and histograms) for minmax,
 *    per_channel_minmax, percentile and entropy however the data is split;
 *    moving_average appends streams within 1e-6; mse within the documented
 *    tolerance; mismatched options rejected;
 *  - state size fixed at creation whatever the data; reset; concurrent
 *    updates of distinct observers; multi-threaded updates equal
 *    single-threaded ones; batches large enough for the 8-plane kernels
 *    equal the same data in small batches; dyadic counts exact at every
 *    magnitude; extreme range growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "core/rng.h"
#include "tests/observers/obs_fixture.h"

static const enum observer_kind tensor_kinds[] = {
	OBSERVER_MINMAX, OBSERVER_MOVING_AVERAGE, OBSERVER_PERCENTILE,
	OBSERVER_ENTROPY, OBSERVER_MSE,
};
#define NUM_TENSOR_KINDS (sizeof(tensor_kinds) / sizeof(tensor_kinds[0]))

/* Every kind, per-channel with 4 channels (data sizes are multiples of 4). */
static struct observer *make_any(enum observer_kind kind, enum qcal_dtype dtype,
				 bool symmetric)
{
	struct observer_options opt;

	observer_options_init(&opt, kind, dtype, symmetric);
	if (kind == OBSERVER_PER_CHANNEL_MINMAX)
		opt.channels = 4;
	return obs_make(&opt);
}

static void update_ok(struct observer *o, const float *x, size_t n)
{
	struct qcal_err err;

	if (observer_update(o, x, n, &err) != QCAL_OK)
		fail_msg("observer_update: %s", err.msg);
}

/* Bitwise equality of two results; prints the first difference unless
 * label is NULL. */
static bool same_qparams(const char *label, const struct observer_qparams *a,
			 const struct observer_qparams *b)
{
	const char *what = NULL;

	if (a->channels != b->channels)
		what = "channels";
	for (int c = 0; !what && c < a->channels; c++) {
		if (!obs_same_float(a->scales[c], b->scales[c]))
			what = "scale";
		else if (a->zero_points[c] != b->zero_points[c])
			what = "zero point";
		else if (!obs_same_float(a->clip_mins[c], b->clip_mins[c]) ||
			 !obs_same_float(a->clip_maxs[c], b->clip_maxs[c]))
			what = "clip range";
	}
	if (!what && (a->observed_min != b->observed_min || a->observed_max != b->observed_max))
		what = "observed range";
	if (!what && a->count != b->count)
		what = "count";
	if (what && label)
		printf("  %s: %s differs: scale %.9g vs %.9g, clip [%.9g, %.9g] vs [%.9g, %.9g], count %llu vs %llu\n",
		       label, what, (double)a->scales[0], (double)b->scales[0], a->clip_min,
		       a->clip_max, b->clip_min, b->clip_max, (unsigned long long)a->count,
		       (unsigned long long)b->count);
	return what == NULL;
}

static bool same_histogram(const struct observer *a, const struct observer *b)
{
	struct observer_histogram ha, hb;
	struct qcal_err err;
	bool same;

	assert_int_equal(observer_get_histogram(a, &ha, &err), QCAL_OK);
	assert_int_equal(observer_get_histogram(b, &hb, &err), QCAL_OK);
	same = ha.bins == hb.bins && ha.lo == hb.lo && ha.hi == hb.hi &&
	       !memcmp(ha.counts, hb.counts, (size_t)ha.bins * sizeof(double));
	observer_histogram_free(&ha);
	observer_histogram_free(&hb);
	return same;
}

static void test_kind_names(void **state)
{
	/* the names calib/qconfig.c accepts */
	static const char *const names[] = {
		"minmax", "moving_average", "percentile", "entropy", "mse", "per_channel_minmax",
	};
	enum observer_kind k;

	(void)state;
	for (int i = 0; i < OBSERVER_KIND_COUNT; i++) {
		assert_string_equal(observer_kind_name((enum observer_kind)i), names[i]);
		assert_int_equal(observer_kind_parse(names[i], &k), 0);
		assert_int_equal(k, i);
	}
	assert_int_equal(observer_kind_parse("kl", &k), -1);
	assert_string_equal(observer_kind_name(OBSERVER_KIND_COUNT), "unknown");
}

static void expect_invalid(const struct observer_options *opt, const char *needle)
{
	struct observer *o = (struct observer *)1;
	struct qcal_err err;

	assert_int_equal(observer_create(&o, opt, &err), QCAL_EINVAL);
	assert_null(o);
	if (!strstr(err.msg, needle))
		fail_msg("message '%s' does not mention '%s'", err.msg, needle);
}

static void test_options(void **state)
{
	struct observer_options opt;
	const struct observer_options *r;
	struct observer *o;

	(void)state;
	observer_options_init(&opt, OBSERVER_PERCENTILE, QCAL_DTYPE_FLOAT, true);
	expect_invalid(&opt, "dtype float");
	observer_options_init(&opt, OBSERVER_PERCENTILE, QCAL_DTYPE_INT8, true);
	opt.percentile = 100.5;
	expect_invalid(&opt, "percentile 100.5");
	opt.percentile = 0;
	opt.bins = 8;
	expect_invalid(&opt, "8 bins");
	observer_options_init(&opt, OBSERVER_MINMAX, QCAL_DTYPE_INT8, true);
	opt.bins = 2048;
	expect_invalid(&opt, "bins 2048");
	observer_options_init(&opt, OBSERVER_MOVING_AVERAGE, QCAL_DTYPE_INT8, true);
	opt.averaging_constant = 1.5;
	expect_invalid(&opt, "averaging constant 1.5");
	observer_options_init(&opt, OBSERVER_PER_CHANNEL_MINMAX, QCAL_DTYPE_INT8, true);
	expect_invalid(&opt, "0 channels");
	observer_options_init(&opt, OBSERVER_MINMAX, QCAL_DTYPE_INT8, true);
	opt.channels = 3;
	expect_invalid(&opt, "3 channels");
	observer_options_init(&opt, OBSERVER_MSE, QCAL_DTYPE_INT8, true);
	opt.eps = -1;
	expect_invalid(&opt, "eps -1");
	opt.eps = 0;
	opt.upsample_rate = 5000;
	expect_invalid(&opt, "upsample rate 5000");
	opt.kind = (enum observer_kind)42;
	expect_invalid(&opt, "observer kind 42");
	/* defaults */
	observer_options_init(&opt, OBSERVER_ENTROPY, QCAL_DTYPE_INT8, true);
	o = obs_make(&opt);
	r = observer_options(o);
	assert_int_equal(r->bins, 4096);
	assert_int_equal(r->channels, 1);
	assert_true(r->percentile == 99.99 && r->averaging_constant == 0.01);
	assert_true(r->eps == FLT_EPSILON);
	observer_free(o);
	observer_free(NULL);
}

/* No finite value: QCAL_ESTATE, with the NaN/Inf counts still reported. */
static void test_empty_observer(void **state)
{
	const float junk[] = { NAN, INFINITY, -INFINITY, NAN };

	(void)state;
	for (int k = 0; k < OBSERVER_KIND_COUNT; k++) {
		struct observer *o = make_any((enum observer_kind)k, QCAL_DTYPE_INT8, true);
		struct observer_qparams q;
		struct observer_histogram h;
		struct qcal_err err;

		assert_int_equal(observer_compute_qparams(o, &q, &err), QCAL_ESTATE);
		assert_non_null(strstr(err.msg, "no finite value"));
		observer_qparams_free(&q);
		update_ok(o, junk, 4);
		assert_int_equal(observer_compute_qparams(o, &q, &err), QCAL_ESTATE);
		assert_non_null(strstr(err.msg, "2 NaN, 2 Inf"));
		assert_int_equal(q.nan_count, 2);
		assert_int_equal(q.inf_count, 2);
		assert_int_equal(q.count, 0);
		observer_qparams_free(&q);
		if (k == OBSERVER_PERCENTILE || k == OBSERVER_ENTROPY || k == OBSERVER_MSE)
			assert_int_equal(observer_get_histogram(o, &h, &err), QCAL_ESTATE);
		else
			assert_int_equal(observer_get_histogram(o, &h, &err), QCAL_EINVAL);
		observer_free(o);
	}
}

/* Seeded test data: a normal bulk with a scale and some spikes. */
static float *make_data(size_t n, uint64_t seed, float scale)
{
	struct qcal_rng rng;
	float *x = malloc(n * sizeof(float));

	assert_non_null(x);
	qcal_rng_seed(&rng, seed);
	for (size_t i = 0; i < n; i++)
		x[i] = qcal_rng_normal(&rng) * scale;
	return x;
}

/*
 * NaN and +-Inf anywhere (including the vector tails and the extremes) do
 * not change any kind's qparams against the same batches cleaned.
 */
static void test_nan_inf_excluded(void **state)
{
	const size_t sizes[] = { 1000, 37, 4096 };
	float *dirty[3], *clean[3];
	size_t clean_n[3];
	uint64_t nans = 0, infs = 0;

	(void)state;
	for (int b = 0; b < 3; b++) {
		dirty[b] = make_data(sizes[b], 100 + b, 1.0f + b);
		clean[b] = malloc(sizes[b] * sizeof(float));
		for (size_t i = 0; i < sizes[b]; i += 7 + b) {
			dirty[b][i] = (i / 7) % 3 == 0 ? NAN : (i / 7) % 3 == 1 ? INFINITY : -INFINITY;
		}
		dirty[b][sizes[b] - 1] = NAN; /* in the scalar tail */
		clean_n[b] = 0;
		for (size_t i = 0; i < sizes[b]; i++) {
			if (isnan(dirty[b][i]))
				nans++;
			else if (isinf(dirty[b][i]))
				infs++;
			else
				clean[b][clean_n[b]++] = dirty[b][i];
		}
	}
	for (int k = 0; k < OBSERVER_KIND_COUNT; k++)
		for (int sym = 0; sym < 2; sym++) {
			struct observer *a, *c;
			struct observer_qparams qa, qc;

			if (k == OBSERVER_PER_CHANNEL_MINMAX)
				continue; /* rows would shift; see test_per_channel_rows */
			a = make_any((enum observer_kind)k, QCAL_DTYPE_UINT8, sym);
			c = make_any((enum observer_kind)k, QCAL_DTYPE_UINT8, sym);
			for (int b = 0; b < 3; b++) {
				update_ok(a, dirty[b], sizes[b]);
				update_ok(c, clean[b], clean_n[b]);
			}
			obs_qparams(a, &qa);
			obs_qparams(c, &qc);
			assert_true(same_qparams(observer_kind_name((enum observer_kind)k), &qa, &qc));
			assert_int_equal(qa.nan_count, nans);
			assert_int_equal(qa.inf_count, infs);
			assert_true(isfinite(qa.clip_min) && isfinite(qa.clip_max));
			observer_qparams_free(&qa);
			observer_qparams_free(&qc);
			observer_free(a);
			observer_free(c);
		}
	for (int b = 0; b < 3; b++) {
		free(dirty[b]);
		free(clean[b]);
	}
}

/* A masked update is the update of the kept values. */
static void test_masked_update(void **state)
{
	const size_t n = 70001; /* past the 8-plane threshold, odd tail */
	float *x = make_data(n, 7, 2.0f), *kept = malloc(n * sizeof(float));
	uint8_t *keep = malloc(n);
	size_t m = 0;

	(void)state;
	for (size_t i = 0; i < n; i++) {
		keep[i] = (i * 2654435761u >> 7) % 5 != 0;
		if (i % 4099 == 0)
			x[i] = i % 2 ? INFINITY : NAN; /* masked or counted */
	}
	/* masked-out extremes must not count either */
	x[10] = 1e6f;
	keep[10] = 0;
	for (size_t i = 0; i < n; i++)
		if (keep[i] && !isnan(x[i]) && !isinf(x[i]))
			kept[m++] = x[i];
	for (int k = 0; k < OBSERVER_KIND_COUNT; k++) {
		struct observer *a, *c;
		struct observer_qparams qa, qc;
		struct qcal_err err;

		if (k == OBSERVER_PER_CHANNEL_MINMAX)
			continue;
		a = make_any((enum observer_kind)k, QCAL_DTYPE_INT8, false);
		c = make_any((enum observer_kind)k, QCAL_DTYPE_INT8, false);
		assert_int_equal(observer_update_masked(a, x, keep, n, &err), QCAL_OK);
		update_ok(c, kept, m);
		obs_qparams(a, &qa);
		obs_qparams(c, &qc);
		assert_true(same_qparams(observer_kind_name((enum observer_kind)k), &qa, &qc));
		assert_true(qa.nan_count + qa.inf_count > 0);
		assert_true(qa.observed_max < 1e6);
		observer_qparams_free(&qa);
		observer_qparams_free(&qc);
		observer_free(a);
		observer_free(c);
	}
	free(x);
	free(kept);
	free(keep);
}

/*
 * Split a case's stream into parts (at batch boundaries and inside
 * batches), observe each part separately, merge: exact kinds must equal
 * the whole stream bit for bit.  Returns the relative scale difference.
 */
static double merged_vs_whole(enum observer_kind kind, const struct obs_case *cs,
			      enum qcal_dtype dtype, bool sym, int parts, bool *same)
{
	struct observer *whole = make_any(kind, dtype, sym), *acc = make_any(kind, dtype, sym);
	struct observer_qparams qw, qm;
	struct qcal_err err;
	double d;

	obs_feed(whole, cs);
	for (int p = 0; p < parts; p++) {
		struct observer *part = make_any(kind, dtype, sym);

		/* part p sees a contiguous run of the concatenated stream, cut
		 * at arbitrary (odd) positions, batch by batch */
		size_t lo = cs->total * (size_t)p / (size_t)parts + (p ? 3 : 0);
		size_t hi = p == parts - 1 ? cs->total : cs->total * (size_t)(p + 1) / (size_t)parts + 3;
		size_t off = 0;

		for (int b = 0; b < cs->batches; off += cs->n[b], b++) {
			size_t s = lo > off ? lo : off, e = hi < off + cs->n[b] ? hi : off + cs->n[b];

			if (s < e)
				update_ok(part, cs->all + s, e - s);
		}
		assert_int_equal(observer_merge(acc, part, &err), QCAL_OK);
		observer_free(part);
	}
	obs_qparams(whole, &qw);
	obs_qparams(acc, &qm);
	/* mse is expected to differ a little: compare quietly */
	*same = same_qparams(kind == OBSERVER_MSE ? NULL : observer_kind_name(kind), &qw, &qm);
	if (kind == OBSERVER_PERCENTILE || kind == OBSERVER_ENTROPY)
		*same = *same && same_histogram(whole, acc);
	d = fabs((double)qw.scale - (double)qm.scale) / (double)qw.scale;
	observer_qparams_free(&qw);
	observer_qparams_free(&qm);
	observer_free(whole);
	observer_free(acc);
	return d;
}

static void test_merge_exact_kinds(void **state)
{
	const enum observer_kind kinds[] = { OBSERVER_MINMAX, OBSERVER_PERCENTILE,
					     OBSERVER_ENTROPY };
	hid_t f = obs_fixture_open();
	int runs = 0;

	(void)state;
	for (int c = 0; c < OBS_NUM_CASES; c++) {
		struct obs_case cs;

		obs_case_load(f, obs_case_names[c], &cs);
		for (size_t k = 0; k < 3; k++)
			for (int parts = 2; parts <= 5; parts += 3)
				for (int sym = 0; sym < 2; sym++) {
					bool same;

					merged_vs_whole(kinds[k], &cs, QCAL_DTYPE_INT8, sym, parts, &same);
					if (!same)
						fail_msg("%s %s, %d parts: merged differs from the whole stream",
							 observer_kind_name(kinds[k]), cs.name, parts);
					runs++;
				}
		obs_case_free(&cs);
	}
	printf("merge: %d splits of minmax/percentile/entropy equal the whole stream exactly\n",
	       runs);
	H5Fclose(f);
}

/*
 * moving_average: src's batches follow dst's; within 1e-6 of the single
 * stream (float32 rounding of the recurrence).  mse: the histogram of a
 * split stream is re-binned differently; the documented tolerance.
 */
#define MSE_MERGE_TOL 0.01

static void test_merge_tolerance_kinds(void **state)
{
	hid_t f = obs_fixture_open();
	double worst_mse = 0;

	(void)state;
	for (int c = 0; c < OBS_NUM_CASES; c++) {
		struct obs_case cs;
		struct observer *whole, *a, *b;
		struct observer_qparams qw, qm;
		struct qcal_err err;

		obs_case_load(f, obs_case_names[c], &cs);
		/* moving average, split at a batch boundary */
		whole = obs_make_kind(OBSERVER_MOVING_AVERAGE, QCAL_DTYPE_UINT8, false);
		a = obs_make_kind(OBSERVER_MOVING_AVERAGE, QCAL_DTYPE_UINT8, false);
		b = obs_make_kind(OBSERVER_MOVING_AVERAGE, QCAL_DTYPE_UINT8, false);
		obs_feed(whole, &cs);
		update_ok(a, cs.x[0], cs.n[0]);
		for (int k = 1; k < cs.batches; k++)
			update_ok(b, cs.x[k], cs.n[k]);
		assert_int_equal(observer_merge(a, b, &err), QCAL_OK);
		obs_qparams(whole, &qw);
		obs_qparams(a, &qm);
		assert_true(fabs(qm.clip_min - qw.clip_min) <= 1e-6 * (qw.clip_max - qw.clip_min));
		assert_true(fabs(qm.clip_max - qw.clip_max) <= 1e-6 * (qw.clip_max - qw.clip_min));
		observer_qparams_free(&qw);
		observer_qparams_free(&qm);
		observer_free(whole);
		observer_free(a);
		observer_free(b);
		/* mse in 2 and 5 parts */
		for (int parts = 2; parts <= 5; parts += 3)
			for (int sym = 0; sym < 2; sym++) {
				bool same;
				double d = merged_vs_whole(OBSERVER_MSE, &cs, QCAL_DTYPE_UINT8, sym,
							   parts, &same);

				worst_mse = fmax(worst_mse, d);
				if (d > MSE_MERGE_TOL)
					printf("  mse %s %d parts: relative scale difference %.3g\n",
					       cs.name, parts, d);
			}
		obs_case_free(&cs);
	}
	printf("merge: moving_average within 1e-6; mse worst relative scale difference %.3g (tolerance %g)\n",
	       worst_mse, MSE_MERGE_TOL);
	H5Fclose(f);
	assert_true(worst_mse <= MSE_MERGE_TOL);
}

static void test_merge_rejects(void **state)
{
	struct observer *a = obs_make_kind(OBSERVER_PERCENTILE, QCAL_DTYPE_INT8, true);
	struct observer *b = obs_make_kind(OBSERVER_PERCENTILE, QCAL_DTYPE_UINT8, true);
	struct observer *c = obs_make_kind(OBSERVER_ENTROPY, QCAL_DTYPE_INT8, true);
	struct qcal_err err;

	(void)state;
	assert_int_equal(observer_merge(a, b, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "option dtype differs"));
	assert_int_equal(observer_merge(a, c, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "option kind differs"));
	assert_int_equal(observer_merge(a, a, &err), QCAL_EINVAL);
	observer_free(a);
	observer_free(b);
	observer_free(c);
}

/* per_channel_minmax: rows, a bad size, an all-NaN channel, merge. */
static void test_per_channel_rows(void **state)
{
	struct observer_options opt;
	struct observer_qparams q, q2;
	struct observer *o, *p;
	struct qcal_err err;
	float x[4 * 5] = {
		1, 2, 3, 4, 5,
		-1, -2, -3, -4, -5,
		0.5f, NAN, -0.25f, INFINITY, 0.75f,
		NAN, NAN, NAN, NAN, NAN,
	};

	(void)state;
	observer_options_init(&opt, OBSERVER_PER_CHANNEL_MINMAX, QCAL_DTYPE_INT8, true);
	opt.channels = 4;
	o = obs_make(&opt);
	assert_int_equal(observer_update(o, x, 19, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "not 4 channels"));
	update_ok(o, x, 20);
	assert_int_equal(observer_compute_qparams(o, &q, &err), QCAL_ESTATE);
	assert_non_null(strstr(err.msg, "channel 3 of 4"));
	observer_qparams_free(&q);
	for (int i = 15; i < 20; i++)
		x[i] = (float)(i - 17); /* channel 3: -2..2 */
	p = obs_make(&opt);
	update_ok(p, x, 20);
	assert_int_equal(observer_merge(o, p, &err), QCAL_OK);
	obs_qparams(o, &q);
	obs_qparams(p, &q2);
	assert_true(isnan(q.scale));
	for (int c = 0; c < 4; c++) {
		assert_true(obs_same_float(q.scales[c], q2.scales[c]));
		assert_int_equal(q.zero_points[c], q2.zero_points[c]);
	}
	assert_true(obs_same_float(q.scales[0], 5.0f / 127.5f));
	assert_true(obs_same_float(q.scales[2], 0.75f / 127.5f));
	/* o saw 6 NaN and 1 Inf, p 1 and 1 */
	assert_int_equal(q.nan_count, 7);
	assert_int_equal(q.inf_count, 2);
	observer_qparams_free(&q);
	observer_qparams_free(&q2);
	observer_free(o);
	observer_free(p);
}

/* The state size is fixed at creation and does not grow with the data. */
static void test_bounded_memory(void **state)
{
	const size_t big = (size_t)1 << 22;
	float *x = make_data(big, 3, 1.0f);

	(void)state;
	for (int k = 0; k < OBSERVER_KIND_COUNT; k++) {
		struct observer *o = make_any((enum observer_kind)k, QCAL_DTYPE_INT8, true);
		size_t before = observer_state_bytes(o);

		for (int r = 0; r < 20; r++)
			update_ok(o, x + r * 1000, 1000);
		assert_int_equal(observer_state_bytes(o), before);
		for (int r = 0; r < 3; r++) {
			x[r] *= 1000.0f; /* range growth */
			update_ok(o, x, big);
		}
		assert_int_equal(observer_state_bytes(o), before);
		printf("  %-18s %6zu bytes\n", observer_kind_name((enum observer_kind)k), before);
		/* default histograms: a few tens of KB at most */
		assert_true(before <= 40 * 1024);
		observer_free(o);
	}
	free(x);
}

static void test_reset(void **state)
{
	float *x = make_data(5000, 11, 3.0f);

	(void)state;
	for (size_t k = 0; k < NUM_TENSOR_KINDS; k++) {
		struct observer *o = obs_make_kind(tensor_kinds[k], QCAL_DTYPE_INT8, false);
		struct observer *fresh = obs_make_kind(tensor_kinds[k], QCAL_DTYPE_INT8, false);
		struct observer_qparams a, b;
		struct qcal_err err;

		update_ok(o, x, 5000);
		observer_reset(o);
		assert_int_equal(observer_compute_qparams(o, &a, &err), QCAL_ESTATE);
		observer_qparams_free(&a);
		update_ok(o, x, 2000);
		update_ok(fresh, x, 2000);
		obs_qparams(o, &a);
		obs_qparams(fresh, &b);
		assert_true(same_qparams("reset", &a, &b));
		observer_qparams_free(&a);
		observer_qparams_free(&b);
		observer_free(o);
		observer_free(fresh);
	}
	free(x);
}

/*
 * One big batch (8-plane kernels) and the same data in small batches
 * (one plane) give the same histogram: exact for the dyadic kinds.
 */
static void test_big_batches_equal_small(void **state)
{
	const size_t n = 1 << 20;
	float *x = make_data(n, 21, 0.5f);

	(void)state;
	for (int k = OBSERVER_PERCENTILE; k <= OBSERVER_ENTROPY; k++)
		for (int sym = 0; sym < 2; sym++) {
			struct observer *a = obs_make_kind((enum observer_kind)k, QCAL_DTYPE_INT8, sym);
			struct observer *b = obs_make_kind((enum observer_kind)k, QCAL_DTYPE_INT8, sym);
			struct observer_qparams qa, qb;

			update_ok(a, x, n);
			for (size_t off = 0; off < n; off += 999)
				update_ok(b, x + off, n - off < 999 ? n - off : 999);
			assert_true(same_histogram(a, b));
			obs_qparams(a, &qa);
			obs_qparams(b, &qb);
			assert_true(same_qparams("big vs small batches", &qa, &qb));
			observer_qparams_free(&qa);
			observer_qparams_free(&qb);
			observer_free(a);
			observer_free(b);
		}
	free(x);
}

/* Ranges that grow by 60 orders of magnitude, or start as one value. */
static void test_extreme_ranges(void **state)
{
	const float tiny[] = { 1e-30f, -2e-30f, 3e-30f, 0.0f };
	const float zeros[] = { 0, 0, 0, 0, 0 };
	const float huge[] = { 1e30f, -3e30f, 2.5f, 7e29f };

	(void)state;
	for (size_t k = 0; k < NUM_TENSOR_KINDS; k++)
		for (int order = 0; order < 2; order++) {
			struct observer *o = obs_make_kind(tensor_kinds[k], QCAL_DTYPE_INT8, false);
			struct observer_qparams q;

			update_ok(o, order ? zeros : tiny, order ? 5 : 4);
			update_ok(o, huge, 4);
			update_ok(o, tiny, 4);
			obs_qparams(o, &q);
			assert_true(isfinite(q.scale) && q.scale > 0);
			assert_true(q.clip_min >= (double)-3e30f && q.clip_max <= (double)1e30f);
			assert_int_equal(q.count, order ? 13 : 12);
			observer_qparams_free(&q);
			observer_free(o);
		}
	/* mse states holding a single value merge both ways */
	for (int order = 0; order < 2; order++) {
		struct observer *p = obs_make_kind(OBSERVER_MSE, QCAL_DTYPE_INT8, false);
		struct observer *q = obs_make_kind(OBSERVER_MSE, QCAL_DTYPE_INT8, false);
		struct observer_histogram h;
		struct observer_qparams r;
		struct qcal_err err;
		double total = 0;

		update_ok(p, zeros, 5);
		update_ok(q, huge + 2, 1); /* 2.5 */
		update_ok(q, tiny, 4);
		assert_int_equal(observer_merge(order ? q : p, order ? p : q, &err), QCAL_OK);
		obs_qparams(order ? q : p, &r);
		assert_int_equal(r.count, 10);
		assert_true(r.clip_min >= r.observed_min && r.clip_max <= r.observed_max);
		assert_int_equal(observer_get_histogram(order ? q : p, &h, &err), QCAL_OK);
		for (int i = 0; i < h.bins; i++)
			total += h.counts[i];
		assert_true(fabs(total - 10) < 1e-3);
		assert_true(h.lo < h.hi);
		observer_histogram_free(&h);
		observer_qparams_free(&r);
		observer_free(p);
		observer_free(q);
	}
	/* a constant tensor */
	for (size_t k = 0; k < NUM_TENSOR_KINDS; k++) {
		struct observer *o = obs_make_kind(tensor_kinds[k], QCAL_DTYPE_INT8, true);
		const float c[] = { 0.25f, 0.25f, 0.25f };
		struct observer_qparams q;

		update_ok(o, c, 3);
		update_ok(o, c, 3);
		obs_qparams(o, &q);
		assert_true(obs_same_float(q.scale, 0.25f / 127.5f));
		observer_qparams_free(&q);
		observer_free(o);
	}
}

/*
 * observer_update_parallel gives the state of observer_update, bit for
 * bit, for every kind (with and without a mask, and across a range growth).
 */
static void test_parallel_update(void **state)
{
	const size_t n = 1500008; /* a multiple of 4 rows for per-channel */
	float *x = make_data(n, 31, 2.0f);
	uint8_t *keep = malloc(n);

	(void)state;
	for (size_t i = 0; i < n; i++) {
		keep[i] = i % 11 != 3;
		if (i % 100003 == 0)
			x[i] = i % 2 ? NAN : -INFINITY;
	}
	for (int k = 0; k < OBSERVER_KIND_COUNT; k++)
		for (int masked = 0; masked < 2; masked++) {
			struct observer *a = make_any((enum observer_kind)k, QCAL_DTYPE_INT8, masked);
			struct observer *b = make_any((enum observer_kind)k, QCAL_DTYPE_INT8, masked);
			const uint8_t *kp = masked ? keep : NULL;
			struct observer_qparams qa, qb;
			struct qcal_err err;

			for (int r = 0; r < 3; r++) {
				/* the third pass sees a new outlier: the range grows */
				if (r == 2)
					x[n / 2 + 1] = 1e4f;
				if (kp)
					assert_int_equal(observer_update_masked(a, x, kp, n, &err), QCAL_OK);
				else
					update_ok(a, x, n);
				assert_int_equal(observer_update_parallel(b, x, kp, n, 2, &err), QCAL_OK);
			}
			x[n / 2 + 1] = 0.0f;
			obs_qparams(a, &qa);
			obs_qparams(b, &qb);
			assert_true(same_qparams("parallel", &qa, &qb));
			assert_int_equal(qa.nan_count, qb.nan_count);
			assert_int_equal(qa.inf_count, qb.inf_count);
			if (k == OBSERVER_PERCENTILE || k == OBSERVER_ENTROPY || k == OBSERVER_MSE)
				assert_true(same_histogram(a, b));
			observer_qparams_free(&qa);
			observer_qparams_free(&qb);
			observer_free(a);
			observer_free(b);
		}
	free(x);
	free(keep);
}

/*
 * The dyadic histograms against an independent reference, at magnitudes
 * that take the kernels' float path (cells >= 2^-126 and <= 1) and their
 * double path (coarser, or finer than float can scale): every count is
 * floor(x / 2^exp) - origin, and halves merge into the same histogram.
 */
static void test_dyadic_exact_at_all_scales(void **state)
{
	const float scales[] = { 1e-41f, 1e-36f, 1e-20f, 1.0f, 3e3f, 1e12f, 1e36f };
	const size_t n = 20000;

	(void)state;
	for (size_t s = 0; s < sizeof(scales) / sizeof(scales[0]); s++)
		for (int sym = 0; sym < 2; sym++) {
			float *x = make_data(n, 40 + s, 1.0f);
			struct observer *o = obs_make_kind(OBSERVER_PERCENTILE, QCAL_DTYPE_INT8, sym);
			struct observer *h1 = obs_make_kind(OBSERVER_PERCENTILE, QCAL_DTYPE_INT8, sym);
			struct observer *h2 = obs_make_kind(OBSERVER_PERCENTILE, QCAL_DTYPE_INT8, sym);
			struct observer_histogram h;
			struct qcal_err err;
			double *ref, w;
			int exp;

			for (size_t i = 0; i < n; i++)
				x[i] *= scales[s];
			/* the smallest magnitudes: -2^-149 is in cell -1 at every
			 * exponent (even when x / 2^exp underflows), -0 in cell 0 */
			x[0] = -0x1p-149f;
			x[1] = -0.0f;
			x[2] = 0x1p-149f;
			x[3] = -0x1p-126f;
			update_ok(o, x, n);
			update_ok(h1, x, n / 3);
			update_ok(h2, x + n / 3, n - n / 3);
			assert_int_equal(observer_merge(h1, h2, &err), QCAL_OK);
			assert_true(same_histogram(o, h1));
			assert_int_equal(observer_get_histogram(o, &h, &err), QCAL_OK);
			w = (h.hi - h.lo) / h.bins;
			frexp(w, &exp);
			exp -= 1;
			assert_true(ldexp(1.0, exp) == w);
			ref = calloc((size_t)h.bins, sizeof(double));
			for (size_t i = 0; i < n; i++) {
				double v = sym ? fabs((double)x[i]) : (double)x[i];
				double cell = floor(ldexp(v, -exp)) - ldexp(h.lo, -exp);

				assert_true(cell >= 0 && cell < h.bins);
				ref[(size_t)cell] += 1;
			}
			if (memcmp(ref, h.counts, (size_t)h.bins * sizeof(double)))
				fail_msg("scale %g %s: counts differ from floor(x / 2^%d)",
					 (double)scales[s], sym ? "|x|" : "x", exp);
			free(ref);
			observer_histogram_free(&h);
			observer_free(o);
			observer_free(h1);
			observer_free(h2);
			free(x);
		}
}

struct worker {
	enum observer_kind kind;
	const float *x;
	size_t n;
	struct observer_qparams q;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct observer_options opt;
	struct observer *o;

	observer_options_init(&opt, w->kind, QCAL_DTYPE_UINT8, false);
	if (observer_create(&o, &opt, NULL) != QCAL_OK)
		return NULL;
	for (size_t off = 0; off < w->n; off += 100000)
		if (observer_update(o, w->x + off, w->n - off < 100000 ? w->n - off : 100000,
				    NULL) != QCAL_OK)
			break;
	observer_compute_qparams(o, &w->q, NULL);
	observer_free(o);
	return w;
}

/* Distinct observers updated from several threads at once agree with a
 * single-threaded run. */
static void test_concurrent_updates(void **state)
{
	const size_t n = 600000;
	float *x = make_data(n, 5, 1.5f);
	struct worker ref[NUM_TENSOR_KINDS], w[2 * NUM_TENSOR_KINDS];
	pthread_t th[2 * NUM_TENSOR_KINDS];

	(void)state;
	for (size_t k = 0; k < NUM_TENSOR_KINDS; k++) {
		ref[k] = (struct worker){ .kind = tensor_kinds[k], .x = x, .n = n };
		assert_non_null(worker_run(&ref[k]));
	}
	for (size_t t = 0; t < 2 * NUM_TENSOR_KINDS; t++) {
		w[t] = (struct worker){ .kind = tensor_kinds[t % NUM_TENSOR_KINDS], .x = x, .n = n };
		assert_int_equal(pthread_create(&th[t], NULL, worker_run, &w[t]), 0);
	}
	for (size_t t = 0; t < 2 * NUM_TENSOR_KINDS; t++) {
		assert_int_equal(pthread_join(th[t], NULL), 0);
		assert_true(same_qparams("thread", &w[t].q, &ref[t % NUM_TENSOR_KINDS].q));
		observer_qparams_free(&w[t].q);
	}
	for (size_t k = 0; k < NUM_TENSOR_KINDS; k++)
		observer_qparams_free(&ref[k].q);
	free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kind_names),
		cmocka_unit_test(test_options),
		cmocka_unit_test(test_empty_observer),
		cmocka_unit_test(test_nan_inf_excluded),
		cmocka_unit_test(test_masked_update),
		cmocka_unit_test(test_merge_exact_kinds),
		cmocka_unit_test(test_merge_tolerance_kinds),
		cmocka_unit_test(test_merge_rejects),
		cmocka_unit_test(test_per_channel_rows),
		cmocka_unit_test(test_bounded_memory),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_big_batches_equal_small),
		cmocka_unit_test(test_extreme_ranges),
		cmocka_unit_test(test_concurrent_updates),
		cmocka_unit_test(test_parallel_update),
		cmocka_unit_test(test_dyadic_exact_at_all_scales),
	};

	qcal_h5_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
