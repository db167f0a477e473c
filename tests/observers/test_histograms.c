/*
 * The histogram observers against references:
 *
 *  - mse vs torch.ao's HistogramObserver (torch 1.13, with histc given the
 *    exact float range, see make_fixtures.py): the histogram after growing
 *    batches, torch's L2 error at fixed bin pairs, the searched clip range
 *    and the qparams;
 *  - entropy vs a straightforward Python implementation of TensorRT's KL
 *    search on the same (exactly reproducible) histogram of |x|, the
 *    prefix-sum search vs its naive twin, and a hand-computed divergence;
 *  - percentile: hand-computed clips, and on every case the bound
 *    0 <= clip - exact quantile < one bin width.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "observers/entropy.h"
#include "observers/torchhist.h"
#include "tests/observers/obs_fixture.h"

static const char *const hist_configs[] = {
	"quint8_aff", "qint8_sym", "qint8_aff", "quint8_sym",
};

static const struct obs_config *config_named(const char *name)
{
	for (int k = 0; k < OBS_NUM_CONFIGS; k++)
		if (!strcmp(obs_configs[k].name, name))
			return &obs_configs[k];
	fail_msg("no config %s", name);
	return NULL;
}

static double rel_diff(double a, double b)
{
	double m = fmax(fabs(a), fabs(b));

	return m > 0 ? fabs(a - b) / m : 0;
}

/*
 * mse observer vs torch's HistogramObserver, after all batches
 * ("histogram") and after the first alone ("histogram1").  Histogram
 * bins, range, clip and qparams are expected bit-exact; the L2 errors
 * within 1e-5 (torch sums them in float32, qcal in double).
 */
static void test_mse_parity(void **state)
{
	hid_t f = obs_fixture_open();
	int runs = 0, exact = 0, hist_exact = 0, stock_checked = 0;
	double worst_scale = 0, worst_err = 0, worst_stock = 0;

	(void)state;
	for (int c = 0; c < 2 * OBS_NUM_CASES; c++) {
		const char *table = c < OBS_NUM_CASES ? "histogram" : "histogram1";
		struct obs_case cs, feed;

		obs_case_load(f, obs_case_names[c % OBS_NUM_CASES], &cs);
		feed = cs;
		if (c >= OBS_NUM_CASES)
			feed.batches = 1;
		for (size_t k = 0; k < sizeof(hist_configs) / sizeof(hist_configs[0]); k++) {
			const struct obs_config *cfg = config_named(hist_configs[k]);
			struct observer *o = obs_make_kind(OBSERVER_MSE, cfg->dtype, cfg->symmetric);
			struct observer_histogram h;
			struct observer_qparams q;
			struct torchhist th;
			struct qcal_err err;
			char path[256];
			float *want_hist, *hist32;
			double *summary, *errors;
			size_t n, ne;
			int stock_same, bins_differ = 0;
			bool same;

			obs_feed(o, &feed);
			obs_qparams(o, &q);
			assert_int_equal(observer_get_histogram(o, &h, &err), QCAL_OK);
			snprintf(path, sizeof(path), "cases/%s/%s/%s/hist", cs.name, table, cfg->name);
			want_hist = obs_read_float(f, path, &n);
			assert_int_equal(n, h.bins);
			for (int i = 0; i < h.bins; i++)
				bins_differ += !obs_same_float((float)h.counts[i], want_hist[i]);
			hist_exact += bins_differ == 0;
			if (bins_differ)
				printf("  %s/%s/%s: %d of %d bins differ from torch's\n", cs.name,
				       table, cfg->name, bins_differ, h.bins);
			snprintf(path, sizeof(path), "cases/%s/%s/%s/summary", cs.name, table, cfg->name);
			summary = obs_read_double(f, path, &n);
			assert_int_equal(n, 12);
			/* range of the histogram */
			assert_true(obs_same_float((float)h.lo, (float)summary[0]));
			assert_true(obs_same_float((float)h.hi, (float)summary[1]));
			/* torch's L2 error at fixed bin pairs, on qcal's histogram */
			hist32 = malloc((size_t)h.bins * sizeof(float));
			for (int i = 0; i < h.bins; i++)
				hist32[i] = (float)h.counts[i];
			th = (struct torchhist){ .bins = h.bins, .upsample = 128, .empty = false,
						 .min = (float)h.lo, .max = (float)h.hi, .hist = hist32 };
			snprintf(path, sizeof(path), "cases/%s/%s/%s/errors", cs.name, table, cfg->name);
			errors = obs_read_double(f, path, &ne);
			for (size_t r = 0; r < ne / 3; r++) {
				double e = torchhist_l2_error(&th, (int)errors[3 * r], (int)errors[3 * r + 1],
							      256.0);
				double d = rel_diff(e, errors[3 * r + 2]);

				worst_err = fmax(worst_err, d);
				if (d > 1e-5)
					printf("  %s/%s/%s: L2 error [%d, %d] %.9g, torch %.9g\n", cs.name,
					       table, cfg->name, (int)errors[3 * r], (int)errors[3 * r + 1], e,
					       errors[3 * r + 2]);
				assert_true(d <= 1e-5);
			}
			same = obs_same_float((float)q.clip_min, (float)summary[2]) &&
			       obs_same_float((float)q.clip_max, (float)summary[3]) &&
			       obs_same_float(q.scale, (float)summary[4]) &&
			       q.zero_point == (int32_t)summary[5];
			exact += same;
			worst_scale = fmax(worst_scale, rel_diff(q.scale, summary[4]));
			if (!same || bins_differ)
				printf("  %s/%s/%s: %d bins differ; clip [%.9g, %.9g] scale %.9g zp %d; torch [%.9g, %.9g] %.9g %d\n",
				       cs.name, table, cfg->name, bins_differ, q.clip_min, q.clip_max,
				       (double)q.scale, q.zero_point, summary[2], summary[3],
				       summary[4], (int)summary[5]);
			/* unpatched torch 1.13 where its int() range truncation is harmless */
			snprintf(path, sizeof(path), "cases/%s/%s/%s", cs.name, table, cfg->name);
			{
				hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
				hid_t a = H5Aopen(g, "stock_equals_fixed", H5P_DEFAULT);
				long long v = 0;

				assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
				stock_same = (int)v;
				H5Aclose(a);
				H5Gclose(g);
			}
			if (stock_same) {
				assert_true(obs_same_float(q.scale, (float)summary[10]));
				assert_int_equal(q.zero_point, (int32_t)summary[11]);
				stock_checked++;
			} else {
				worst_stock = fmax(worst_stock, rel_diff(q.scale, summary[10]));
			}
			runs++;
			free(want_hist);
			free(summary);
			free(errors);
			free(hist32);
			observer_histogram_free(&h);
			observer_qparams_free(&q);
			observer_free(o);
		}
		obs_case_free(&cs);
	}
	printf("mse vs torch HistogramObserver (exact float range): %d runs, %d bit-exact "
	       "histograms, %d bit-exact qparams; worst relative scale difference %.3g, "
	       "worst L2 error difference %.3g\n", runs, hist_exact, exact, worst_scale, worst_err);
	printf("  vs unpatched torch 1.13: equal on all %d runs where histc's int() truncation "
	       "is harmless (one batch within (-1, 1)); elsewhere torch's scale differs by up to %.3g\n",
	       stock_checked, worst_stock);
	H5Fclose(f);
	/* documented tolerance: every histogram exact, scales within 1e-6 */
	assert_int_equal(hist_exact, runs);
	assert_true(worst_scale <= 1e-6);
	assert_true(stock_checked > 0);
}

/* KL at one threshold of a hand-made histogram, derived on paper. */
static void test_entropy_known_answer(void **state)
{
	/* cells [8, 8, 1, 0, 1], 2 levels.  i = 2: P = [8, 10] (the two
	 * outliers fold into the last cell), Q = [8, 8]; i = 3: P = [8, 8, 2],
	 * Q = [8, 8, 1]; i = 4 clips at an empty cell (infinite); i = 5:
	 * P = cells, Q = [17/3 x3, 0, 1]. */
	const uint64_t b[] = { 8, 8, 1, 0, 1 };
	const double kl2 = 8.0 / 18 * log((8.0 / 18) / 0.5) + 10.0 / 18 * log((10.0 / 18) / 0.5);
	const double kl3 = 16.0 / 18 * log((8.0 / 18) / (8.0 / 17)) +
			   2.0 / 18 * log((2.0 / 18) / (1.0 / 17));
	const double kl5 = 16.0 / 18 * log((8.0 / 18) / (17.0 / 3 / 18)) +
			   1.0 / 18 * log((1.0 / 18) / (17.0 / 3 / 18)) +
			   1.0 / 18 * log((1.0 / 18) / (1.0 / 18));
	struct qcal_err err;
	double kl;
	int best;

	(void)state;
	assert_true(fabs(entropy_kl_naive(b, 5, 2, 2) - kl2) < 1e-12);
	assert_true(fabs(entropy_kl_naive(b, 5, 3, 2) - kl3) < 1e-12);
	assert_true(isinf(entropy_kl_naive(b, 5, 4, 2)));
	assert_true(fabs(entropy_kl_naive(b, 5, 5, 2) - kl5) < 1e-12);
	assert_int_equal(entropy_kl_search(b, 5, 2, &best, &kl, &err), QCAL_OK);
	assert_int_equal(best, 2);
	assert_true(fabs(kl - kl2) < 1e-12);
	/* as many levels as cells: nothing to clip */
	assert_int_equal(entropy_kl_search(b, 5, 5, &best, &kl, &err), QCAL_OK);
	assert_int_equal(best, 5);
}

/* The prefix-sum search agrees with its naive twin on random histograms. */
static void test_entropy_search_vs_naive(void **state)
{
	uint64_t b[300];
	uint64_t s = 12345;
	int disagreements = 0;

	(void)state;
	for (int trial = 0; trial < 40; trial++) {
		int used = 40 + trial * 6, levels = 4 + trial % 13, best, naive_best = used;
		double kl, naive_kl = INFINITY;
		struct qcal_err err;

		for (int j = 0; j < used; j++) {
			s = s * 6364136223846793005ull + 1442695040888963407ull;
			/* a decaying bulk, with empty cells and spikes */
			b[j] = (s >> 33) % 7 == 0 ? 0 : (uint64_t)(1000.0 * exp(-j / 25.0)) + (s >> 40) % 50;
		}
		b[used - 1] = 3;
		assert_int_equal(entropy_kl_search(b, used, levels, &best, &kl, &err), QCAL_OK);
		for (int i = levels; i <= used; i++) {
			double d = entropy_kl_naive(b, used, i, levels);

			if (d <= naive_kl) {
				naive_kl = d;
				naive_best = i;
			}
		}
		if (best != naive_best || fabs(kl - naive_kl) > 1e-9 * fmax(1, naive_kl)) {
			printf("  trial %d: search %d (%.12g), naive %d (%.12g)\n", trial, best, kl,
			       naive_best, naive_kl);
			disagreements++;
		}
	}
	assert_int_equal(disagreements, 0);
}

/*
 * entropy observer vs the Python reference: the histogram of |x| must be
 * identical, the chosen threshold the same cell, and the clip its edge.
 */
static void test_entropy_parity(void **state)
{
	hid_t f = obs_fixture_open();
	int runs = 0;

	(void)state;
	for (int c = 0; c < OBS_NUM_CASES; c++) {
		struct obs_case cs;
		char path[256];
		int64_t *want;
		double *table, *probes;
		size_t n, rows, np;
		int exp;

		obs_case_load(f, obs_case_names[c], &cs);
		snprintf(path, sizeof(path), "cases/%s/entropy/hist", cs.name);
		want = obs_read_int64(f, path, &n);
		{
			snprintf(path, sizeof(path), "cases/%s/entropy", cs.name);
			hid_t g = H5Gopen2(f, path, H5P_DEFAULT);
			hid_t a = H5Aopen(g, "exp", H5P_DEFAULT);
			long long v;

			assert_true(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
			exp = (int)v;
			H5Aclose(a);
			H5Gclose(g);
		}
		snprintf(path, sizeof(path), "cases/%s/entropy/runs", cs.name);
		table = obs_read_double(f, path, &rows);
		rows /= 5;
		snprintf(path, sizeof(path), "cases/%s/entropy/probes", cs.name);
		probes = obs_read_double(f, path, &np);
		np /= 3;
		for (size_t r = 0; r < rows; r++) {
			enum qcal_dtype dtype = (enum qcal_dtype)table[5 * r];
			bool symmetric = table[5 * r + 1] != 0;
			int64_t levels = (int64_t)table[5 * r + 2];
			int want_best = (int)table[5 * r + 3], best, used = 0;
			struct observer *o = obs_make_kind(OBSERVER_ENTROPY, dtype, symmetric);
			struct observer_histogram h;
			struct observer_qparams q;
			struct qcal_err err;
			uint64_t *counts;
			double kl, t, amax;

			obs_feed(o, &cs);
			assert_int_equal(observer_get_histogram(o, &h, &err), QCAL_OK);
			assert_int_equal(h.bins, (int)n);
			assert_true(h.of_abs);
			assert_true(h.lo == 0);
			assert_true(h.hi == ldexp(h.bins, exp));
			counts = malloc(n * sizeof(uint64_t));
			for (size_t i = 0; i < n; i++) {
				counts[i] = (uint64_t)h.counts[i];
				if (counts[i] != (uint64_t)want[i])
					fail_msg("%s: |x| histogram cell %zu: %llu, reference %lld",
						 cs.name, i, (unsigned long long)counts[i],
						 (long long)want[i]);
				if (counts[i])
					used = (int)i + 1;
			}
			assert_int_equal(entropy_kl_search(counts, used, levels, &best, &kl, &err),
					 QCAL_OK);
			if (best != want_best || (best < used && rel_diff(kl, table[5 * r + 4]) > 1e-9))
				fail_msg("%s/%s levels %lld: threshold cell %d (KL %.12g), reference %d (%.12g)",
					 cs.name, qcal_dtype_name(dtype), (long long)levels, best, kl,
					 want_best, table[5 * r + 4]);
			for (size_t p = 0; p < np; p++) {
				double d;

				if ((int64_t)probes[3 * p] != levels)
					continue;
				d = entropy_kl_naive(counts, used, (int)probes[3 * p + 1], levels);
				assert_true(isinf(d) == isinf(probes[3 * p + 2]));
				if (!isinf(d))
					assert_true(rel_diff(d, probes[3 * p + 2]) <= 1e-9);
			}
			/* the clip the observer reports is that cell's edge */
			obs_qparams(o, &q);
			amax = fmax(fabs(q.observed_min), fabs(q.observed_max));
			t = best < used ? ldexp(best, exp) : amax;
			assert_true(q.clip_max == fmin(q.observed_max, t));
			assert_true(q.clip_min == fmax(q.observed_min, -t));
			printf("  %-8s %-5s levels %4lld: threshold %4d of %4d cells -> clip [%.6g, %.6g]\n",
			       cs.name, qcal_dtype_name(dtype), (long long)levels, best, used,
			       q.clip_min, q.clip_max);
			runs++;
			free(counts);
			observer_histogram_free(&h);
			observer_qparams_free(&q);
			observer_free(o);
		}
		free(want);
		free(table);
		free(probes);
		obs_case_free(&cs);
	}
	printf("entropy vs reference TensorRT search: %d runs, all equal\n", runs);
	H5Fclose(f);
	assert_true(runs >= 2 * OBS_NUM_CASES);
}

/* 16-bit: more levels than histogram cells, so no clipping. */
static void test_entropy_wide_dtypes_do_not_clip(void **state)
{
	hid_t f = obs_fixture_open();
	struct obs_case cs;
	const enum qcal_dtype dtypes[] = { QCAL_DTYPE_INT16, QCAL_DTYPE_UINT16, QCAL_DTYPE_INT32 };

	(void)state;
	obs_case_load(f, "heavy", &cs);
	for (size_t k = 0; k < 3; k++) {
		struct observer *o = obs_make_kind(OBSERVER_ENTROPY, dtypes[k], true);
		struct observer_qparams q;

		obs_feed(o, &cs);
		obs_qparams(o, &q);
		assert_true(q.clip_min == q.observed_min && q.clip_max == q.observed_max);
		observer_qparams_free(&q);
		observer_free(o);
	}
	obs_case_free(&cs);
	H5Fclose(f);
}

static void check_clip(const char *label, float got, double want)
{
	if ((double)got != want)
		fail_msg("%s: %.9g, expected %.9g", label, (double)got, want);
}

static void test_percentile_known_answers(void **state)
{
	/* 1, 2, ..., 10000: cells of width 8 (10000 / 8 = 1250 < 2048 bins) */
	size_t n = 10000;
	float *x = malloc(n * sizeof(float));
	struct observer_options opt;
	struct observer_qparams q;
	struct observer *o;
	struct qcal_err err;

	(void)state;
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(i + 1);
	/* symmetric 99%: 9900 values must lie at or below the clip; 9900 is
	 * in cell [9896, 9904), so the clip is 9904 */
	observer_options_init(&opt, OBSERVER_PERCENTILE, QCAL_DTYPE_INT8, true);
	opt.percentile = 99;
	o = obs_make(&opt);
	assert_int_equal(observer_update(o, x, n, &err), QCAL_OK);
	obs_qparams(o, &q);
	check_clip("symmetric 99% upper", (float)q.clip_max, 9904);
	check_clip("symmetric 99% lower", (float)q.clip_min, 1);
	assert_true(obs_same_float(q.scale, 9904.0f / 127.5f));
	observer_qparams_free(&q);
	observer_free(o);
	/* asymmetric 99%: also 9900 values at or above the lower clip; 101 is
	 * the exact quantile, its cell [96, 104) */
	opt.symmetric = false;
	o = obs_make(&opt);
	assert_int_equal(observer_update(o, x, n, &err), QCAL_OK);
	obs_qparams(o, &q);
	check_clip("asymmetric 99% upper", (float)q.clip_max, 9904);
	check_clip("asymmetric 99% lower", (float)q.clip_min, 96);
	observer_qparams_free(&q);
	observer_free(o);
	/* 100%: the observed range */
	opt.percentile = 100;
	o = obs_make(&opt);
	assert_int_equal(observer_update(o, x, n, &err), QCAL_OK);
	obs_qparams(o, &q);
	check_clip("100% upper", (float)q.clip_max, 10000);
	check_clip("100% lower", (float)q.clip_min, 1);
	observer_qparams_free(&q);
	observer_free(o);
	free(x);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;

	return (x > y) - (x < y);
}

/* On every case the clip holds the exact quantile and overshoots it by at
 * most one bin (less than one for the asymmetric lower clip). */
static void test_percentile_error_bound(void **state)
{
	const double ps[] = { 90, 99, 99.9, 99.99, 100 };
	hid_t f = obs_fixture_open();
	int checks = 0;
	double worst = 0;

	(void)state;
	for (int c = 0; c < OBS_NUM_CASES; c++) {
		struct obs_case cs;
		float *sorted, *abs_sorted;

		obs_case_load(f, obs_case_names[c], &cs);
		sorted = malloc(cs.total * sizeof(float));
		abs_sorted = malloc(cs.total * sizeof(float));
		for (size_t i = 0; i < cs.total; i++) {
			sorted[i] = cs.all[i];
			abs_sorted[i] = fabsf(cs.all[i]);
		}
		qsort(sorted, cs.total, sizeof(float), cmp_float);
		qsort(abs_sorted, cs.total, sizeof(float), cmp_float);
		for (size_t k = 0; k < sizeof(ps) / sizeof(ps[0]); k++)
			for (int sym = 0; sym < 2; sym++) {
				struct observer_options opt;
				struct observer_histogram h;
				struct observer_qparams q;
				struct observer *o;
				struct qcal_err err;
				size_t need = (size_t)ceil(ps[k] / 100 * (double)cs.total - 1e-9);
				double w, q_hi, q_lo;

				observer_options_init(&opt, OBSERVER_PERCENTILE, QCAL_DTYPE_INT8, sym);
				opt.percentile = ps[k];
				o = obs_make(&opt);
				obs_feed(o, &cs);
				obs_qparams(o, &q);
				assert_int_equal(observer_get_histogram(o, &h, &err), QCAL_OK);
				w = (h.hi - h.lo) / h.bins;
				need = need < 1 ? 1 : need;
				if (sym) {
					q_hi = abs_sorted[need - 1];
					q_lo = -q_hi;
				} else {
					q_hi = sorted[need - 1];
					q_lo = sorted[cs.total - need];
				}
				/* the clip holds the quantile and overshoots by less than a bin */
				if (!(q.clip_max - q_hi <= w && q_lo - q.clip_min <= w &&
				      q.clip_max >= fmin(q_hi, q.observed_max) &&
				      q.clip_min <= fmax(q_lo, q.observed_min)))
					printf("  %s p=%g %s: clip [%.9g, %.9g], quantiles [%.9g, %.9g], bin %.9g, need %zu of %zu\n",
					       cs.name, ps[k], sym ? "sym" : "asym", q.clip_min, q.clip_max,
					       q_lo, q_hi, w, need, cs.total);
				assert_true(q.clip_max >= fmin(q_hi, q.observed_max));
				assert_true(q.clip_max - q_hi <= w);
				assert_true(q.clip_min <= fmax(q_lo, q.observed_min));
				/* symmetric: the lower clip mirrors the upper one */
				assert_true(sym ? q_lo - q.clip_min <= w : q_lo - q.clip_min < w);
				/* the documented width bound */
				if (sym)
					assert_true(w < 2 * fmax(fabs(q.observed_min), fabs(q.observed_max)) / (h.bins - 1));
				else
					assert_true(w < 2 * (q.observed_max - q.observed_min) / (h.bins - 2));
				worst = fmax(worst, fmax(q.clip_max - q_hi, q_lo - q.clip_min) / w);
				checks++;
				observer_histogram_free(&h);
				observer_qparams_free(&q);
				observer_free(o);
			}
		free(sorted);
		free(abs_sorted);
		obs_case_free(&cs);
	}
	printf("percentile: %d clips within one bin of the exact quantile (worst %.3f bins)\n",
	       checks, worst);
	H5Fclose(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mse_parity),
		cmocka_unit_test(test_entropy_known_answer),
		cmocka_unit_test(test_entropy_search_vs_naive),
		cmocka_unit_test(test_entropy_parity),
		cmocka_unit_test(test_entropy_wide_dtypes_do_not_clip),
		cmocka_unit_test(test_percentile_known_answers),
		cmocka_unit_test(test_percentile_error_bound),
	};

	qcal_h5_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
