/*
 * qparams arithmetic and the range observers against torch.ao (1.13):
 *
 *  - hand-computed scales and zero points (ties, eps, every dtype);
 *  - MinMaxObserver, MovingAverageMinMaxObserver and
 *    PerChannelMinMaxObserver on the fixture's cases: scale bit-exact,
 *    zero point and running range equal, for qint8/quint8 symmetric and
 *    affine, 16-bit and 4-bit custom ranges; int32 within one ulp (qcal
 *    divides in double where torch divides by 2^32 - 1 rounded to float);
 *  - the comparison itself fails on a perturbed expectation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "observers/qparams.h"
#include "tests/observers/obs_fixture.h"

struct known {
	enum qcal_dtype dtype;
	bool symmetric;
	float min, max;
	float scale;
	int32_t zero_point;
};

static void test_known_answers(void **state)
{
	const struct known cases[] = {
		/* symmetric int8: max(|min|, max) / 127.5 */
		{ QCAL_DTYPE_INT8, true, -1.0f, 2.0f, 2.0f / 127.5f, 0 },
		/* affine uint8: 4/255, zero point -(-1 / (4/255)) = 63.75 -> 64 */
		{ QCAL_DTYPE_UINT8, false, -1.0f, 3.0f, 4.0f / 255.0f, 64 },
		/* positive-only range widened to include 0: zero point at qmin */
		{ QCAL_DTYPE_INT8, false, 0.5f, 2.0f, 2.0f / 255.0f, -128 },
		/* symmetric unsigned: zero point 2^(bits-1), torch's 128 */
		{ QCAL_DTYPE_UINT8, true, -1.0f, 1.0f, 1.0f / 127.5f, 128 },
		{ QCAL_DTYPE_UINT4, true, -1.0f, 1.0f, 1.0f / 7.5f, 8 },
		{ QCAL_DTYPE_UINT16, true, -1.0f, 1.0f, 1.0f / 32767.5f, 32768 },
		{ QCAL_DTYPE_INT16, true, -3.0f, 1.0f, 3.0f / 32767.5f, 0 },
		/* int4 affine [-1, 1]: 2/15 rounds up in float, so -1 / scale is
		 * -7.4999996, not the tie -7.5: zero point -8 - (-7) = -1 (torch
		 * agrees) */
		{ QCAL_DTYPE_INT4, false, -1.0f, 1.0f, 2.0f / 15.0f, -1 },
		/* a true tie: 1.5 / 3 = 0.5 rounds to even, 0 -> zp = qmin */
		{ QCAL_DTYPE_INT4, false, -1.5f, 43.5f, 3.0f, -8 },
		/* a single value 0: the scale is clamped to eps */
		{ QCAL_DTYPE_UINT8, false, 0.0f, 0.0f, FLT_EPSILON, 0 },
		{ QCAL_DTYPE_INT8, true, 0.0f, 0.0f, FLT_EPSILON, 0 },
		/* negative-only: max widened to 0, zero point at qmax */
		{ QCAL_DTYPE_UINT8, false, -2.0f, -1.0f, 2.0f / 255.0f, 255 },
		/* int32 [-1, 1]: 2^-31 is below eps, so the scale is eps and the
		 * zero point -2^31 - round(-1 / eps) = -2^31 + 2^23 (as torch) */
		{ QCAL_DTYPE_INT32, false, -1.0f, 1.0f, FLT_EPSILON, -2139095040 },
		/* int32 affine, wide range: 2^33 / (2^32 - 1) in double */
		{ QCAL_DTYPE_INT32, false, -0x1p32f, 0x1p32f,
		  (float)(0x1p33 / 4294967295.0), 0 },
		/* int32 symmetric: 1000 / 2147483647.5 in double, then float */
		{ QCAL_DTYPE_INT32, true, -1000.0f, 10.0f,
		  (float)(1000.0 / 2147483647.5), 0 },
	};
	int failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct known *k = &cases[i];
		struct qcal_err err;
		float scale = 0;
		int32_t zp = -1;

		assert_int_equal(qparams_from_range(k->dtype, k->symmetric, FLT_EPSILON,
						    k->min, k->max, &scale, &zp, &err),
				 QCAL_OK);
		if (!obs_same_float(scale, k->scale) || zp != k->zero_point) {
			printf("  %s %s [%g, %g]: scale %.9g zp %d, expected %.9g zp %d\n",
			       qcal_dtype_name(k->dtype), k->symmetric ? "sym" : "aff",
			       (double)k->min, (double)k->max, (double)scale, zp,
			       (double)k->scale, k->zero_point);
			failures++;
		}
	}
	assert_int_equal(failures, 0);
}

static void test_rejects_bad_ranges(void **state)
{
	struct qcal_err err;
	float s;
	int32_t z;

	(void)state;
	assert_int_equal(qparams_from_range(QCAL_DTYPE_INT8, true, FLT_EPSILON, 1.0f,
					    -1.0f, &s, &z, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "min <= max"));
	assert_int_equal(qparams_from_range(QCAL_DTYPE_INT8, true, FLT_EPSILON, NAN,
					    1.0f, &s, &z, &err), QCAL_EINVAL);
	assert_int_equal(qparams_from_range(QCAL_DTYPE_FLOAT, true, FLT_EPSILON, 0.0f,
					    1.0f, &s, &z, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "integer dtype"));
	assert_int_equal(qparams_from_range(QCAL_DTYPE_UINT8, false, FLT_EPSILON,
					    -3e38f, 3e38f, &s, &z, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "overflows float32"));
}

/* Units in the last place between two positive floats. */
static long ulps_apart(float a, float b)
{
	int32_t ia, ib;

	memcpy(&ia, &a, sizeof(ia));
	memcpy(&ib, &b, sizeof(ib));
	return labs((long)ia - (long)ib);
}

/*
 * Compare one observer's result with a fixture row [scale, zp, min, max];
 * returns the number of mismatches (printed).
 */
static int check_row(const char *label, const struct observer_qparams *q,
		     float lo, float hi, const float *row, long max_ulps)
{
	int bad = 0;

	if (max_ulps == 0 ? !obs_same_float(q->scale, row[0])
			  : ulps_apart(q->scale, row[0]) > max_ulps)
		bad++;
	if (q->zero_point != (int32_t)row[1])
		bad++;
	if (!obs_same_float(lo, row[2]) || !obs_same_float(hi, row[3]))
		bad++;
	if (bad)
		printf("  %s: scale %.9g zp %d range [%.9g, %.9g]; torch %.9g %d [%.9g, %.9g]\n",
		       label, (double)q->scale, q->zero_point, (double)lo, (double)hi,
		       (double)row[0], (int)row[1], (double)row[2], (double)row[3]);
	return bad;
}

static void range_parity(enum observer_kind kind, const char *table)
{
	hid_t f = obs_fixture_open();
	int failures = 0, checked = 0, int32_exact = 0;

	for (int c = 0; c < OBS_NUM_CASES; c++) {
		struct obs_case cs;
		char path[256];
		float *rows;
		size_t n;

		obs_case_load(f, obs_case_names[c], &cs);
		snprintf(path, sizeof(path), "cases/%s/%s", cs.name, table);
		rows = obs_read_float(f, path, &n);
		assert_int_equal(n, OBS_NUM_CONFIGS * 4);
		for (int k = 0; k < OBS_NUM_CONFIGS; k++) {
			const struct obs_config *cfg = &obs_configs[k];
			struct observer *o = obs_make_kind(kind, cfg->dtype, cfg->symmetric);
			struct observer_qparams q;
			char label[128];
			int bad;

			obs_feed(o, &cs);
			obs_qparams(o, &q);
			snprintf(label, sizeof(label), "%s/%s", cs.name, cfg->name);
			/* int32: torch divides by (2^32 - 1) / 2 rounded to float */
			bad = check_row(label, &q, (float)q.clip_min, (float)q.clip_max,
					rows + 4 * k, cfg->dtype == QCAL_DTYPE_INT32 ? 1 : 0);
			if (cfg->dtype == QCAL_DTYPE_INT32)
				int32_exact += obs_same_float(q.scale, rows[4 * k]);
			failures += bad;
			checked++;
			observer_qparams_free(&q);
			observer_free(o);
		}
		free(rows);
		obs_case_free(&cs);
	}
	printf("%s: %d observer runs vs torch, %d mismatches (int32: %d of %d bit-exact, the rest 1 ulp)\n",
	       table, checked, failures, int32_exact, OBS_NUM_CASES);
	H5Fclose(f);
	assert_int_equal(failures, 0);
}

static void test_minmax_parity(void **state)
{
	(void)state;
	range_parity(OBSERVER_MINMAX, "minmax");
}

static void test_moving_average_parity(void **state)
{
	(void)state;
	range_parity(OBSERVER_MOVING_AVERAGE, "moving_average");
}

static void test_per_channel_parity(void **state)
{
	static const char *const cfgs[] = {
		"qint8_sym", "qint8_aff", "quint8_aff", "quint8_sym", "int16_sym", "int16_aff",
	};
	hid_t f = obs_fixture_open();
	struct qcal_err err;
	size_t n0, n1;
	float *w0 = obs_read_float(f, "perchannel/w0", &n0);
	float *w1 = obs_read_float(f, "perchannel/w1", &n1);
	int failures = 0;
	const int C = 64;

	(void)state;
	assert_int_equal(n0, n1);
	for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
		const struct obs_config *cfg = NULL;
		struct observer_options opt;
		struct observer_qparams q;
		struct observer *o;
		char path[128];
		float *scales;
		int64_t *zps;
		size_t n;

		for (int k = 0; k < OBS_NUM_CONFIGS; k++)
			if (!strcmp(obs_configs[k].name, cfgs[i]))
				cfg = &obs_configs[k];
		assert_non_null(cfg);
		observer_options_init(&opt, OBSERVER_PER_CHANNEL_MINMAX, cfg->dtype,
				      cfg->symmetric);
		opt.channels = C;
		o = obs_make(&opt);
		assert_int_equal(observer_update(o, w0, n0, &err), QCAL_OK);
		assert_int_equal(observer_update(o, w1, n1, &err), QCAL_OK);
		obs_qparams(o, &q);
		assert_int_equal(q.channels, C);
		snprintf(path, sizeof(path), "perchannel/%s/scales", cfg->name);
		scales = obs_read_float(f, path, &n);
		assert_int_equal(n, C);
		snprintf(path, sizeof(path), "perchannel/%s/zero_points", cfg->name);
		zps = obs_read_int64(f, path, &n);
		for (int c = 0; c < C; c++)
			if (!obs_same_float(q.scales[c], scales[c]) || q.zero_points[c] != zps[c]) {
				printf("  %s channel %d: %.9g %d, torch %.9g %d\n", cfg->name, c,
				       (double)q.scales[c], q.zero_points[c],
				       (double)scales[c], (int)zps[c]);
				failures++;
			}
		observer_qparams_free(&q);
		observer_free(o);
		free(scales);
		free(zps);
	}
	printf("per_channel_minmax: 6 configs x %d channels vs torch, %d mismatches\n",
	       C, failures);
	free(w0);
	free(w1);
	H5Fclose(f);
	assert_int_equal(failures, 0);
}

/* The comparison must notice a one-ulp change of torch's scale. */
static void test_checker_fails_on_discrepancy(void **state)
{
	struct observer_qparams q = { .scale = 0.5f, .zero_point = 3 };
	float row[4] = { 0.5f, 3, -1.0f, 1.0f };

	(void)state;
	assert_int_equal(check_row("self-check", &q, -1.0f, 1.0f, row, 0), 0);
	row[0] = nextafterf(0.5f, 1.0f);
	assert_int_equal(check_row("self-check (expected to differ)", &q, -1.0f, 1.0f, row, 0), 1);
	row[0] = 0.5f;
	row[1] = 4;
	assert_int_equal(check_row("self-check (expected to differ)", &q, -1.0f, 1.0f, row, 0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_rejects_bad_ranges),
		cmocka_unit_test(test_minmax_parity),
		cmocka_unit_test(test_moving_average_parity),
		cmocka_unit_test(test_per_channel_parity),
		cmocka_unit_test(test_checker_fails_on_discrepancy),
	};

	qcal_h5_quiet();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
