/*
 * Fake quantization is bit-exact with PyTorch's
 * fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine,
 * including ties at .5 (round half to even), saturation and infinities.
 * The fixture comes from tests/model/make_fakequant_fixture.py.
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
#include "model/fakequant.h"
#include "tests/common/test_util.h"

static hid_t open_fixture(char *path, size_t size)
{
	struct qcal_err err;
	hid_t f;

	test_source_path(path, size, "tests/model/fixtures/fakequant.h5");
	f = qcal_h5_open_read(path, &err);
	if (f < 0)
		fail_msg("%s", err.msg);
	return f;
}

static size_t count_bit_diffs(const float *a, const float *b, size_t n)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
	return d;
}

/*
 * PyTorch converts round(x / s) to int64 before clamping, which overflows
 * (undefined behaviour; INT64_MIN on x86, so +1e30 and +inf come out as
 * qmin).  qcal clamps in float and saturates.  Those inputs are checked for
 * saturation instead of equality.
 */
static size_t count_torch_overflow_diffs(const float *mine, const float *torch_y,
					 const float *x, size_t n, float scale,
					 float zp, float qmin, float qmax)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++) {
		if (fabsf(x[i] / scale) < 0x1p62f) {
			d += memcmp(&mine[i], &torch_y[i], sizeof(float)) != 0;
			continue;
		}
		float want = ((x[i] > 0 ? qmax : qmin) - zp) * scale;
		d += mine[i] != want;
	}
	return d;
}

static void test_per_tensor_matches_torch(void **state)
{
	static const char *const cases[] = {
		"int8_sym", "uint8_aff", "int16_sym", "int4_sym", "int8_aff_neg",
	};
	char path[512], name[64];
	struct qcal_err err;
	struct qcal_h5_shape shape;
	float *x, *y, *params, *mine;
	hid_t f = open_fixture(path, sizeof(path));
	(void)state;

	assert_int_equal(qcal_h5_read_float(f, path, "x", &x, &shape, &err), QCAL_OK);
	size_t n = qcal_h5_shape_numel(&shape);
	mine = malloc(n * sizeof(float));
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		snprintf(name, sizeof(name), "%s/y", cases[c]);
		assert_int_equal(qcal_h5_read_float(f, path, name, &y, NULL, &err), QCAL_OK);
		snprintf(name, sizeof(name), "%s/params", cases[c]);
		assert_int_equal(qcal_h5_read_float(f, path, name, &params, NULL, &err), QCAL_OK);
		for (int threads = 1; threads <= 2; threads++) {
			memcpy(mine, x, n * sizeof(float));
			fq_per_tensor_mt(mine, n, params[0], (int32_t)params[1],
					 (int64_t)params[2], (int64_t)params[3], threads);
			size_t diffs = count_torch_overflow_diffs(mine, y, x, n, params[0],
								  params[1], params[2], params[3]);
			printf("  %-13s threads=%d: %zu of %zu values differ from PyTorch\n",
			       cases[c], threads, diffs, n);
			assert_int_equal(diffs, 0);
		}
		free(y);
		free(params);
	}
	free(mine);
	free(x);
	H5Fclose(f);
}

static void test_per_channel_matches_torch(void **state)
{
	char path[512];
	struct qcal_err err;
	struct qcal_h5_shape shape;
	float *w, *scales, *ref;
	hid_t f = open_fixture(path, sizeof(path));
	(void)state;

	assert_int_equal(qcal_h5_read_float(f, path, "w", &w, &shape, &err), QCAL_OK);
	assert_int_equal(qcal_h5_read_float(f, path, "w_scales", &scales, NULL, &err), QCAL_OK);
	assert_int_equal(qcal_h5_read_float(f, path, "w_fq", &ref, NULL, &err), QCAL_OK);
	int channels = (int)shape.dims[0];
	size_t inner = (size_t)shape.dims[1];
	fq_per_channel(w, channels, inner, scales, NULL, -128, 127);
	size_t diffs = count_bit_diffs(w, ref, (size_t)channels * inner);
	printf("  per-channel int8: %zu of %zu values differ from PyTorch\n", diffs,
	       (size_t)channels * inner);
	assert_int_equal(diffs, 0);
	free(w);
	free(scales);
	free(ref);
	H5Fclose(f);
}

static void test_known_answers(void **state)
{
	float x[] = { 0.5f, 1.5f, 2.5f, -0.5f, -1.5f, 300.0f, -300.0f, NAN };
	float want[] = { 0.0f, 2.0f, 2.0f, -0.0f, -2.0f, 127.0f, -128.0f };
	(void)state;
	fq_per_tensor(x, 8, 1.0f, 0, -128, 127);
	for (int i = 0; i < 7; i++)
		assert_true(x[i] == want[i]);
	assert_true(isnan(x[7]));
	assert_int_equal(qcal_dtype_bits(QCAL_DTYPE_INT4), 4);
	int64_t lo, hi;
	qcal_dtype_range(QCAL_DTYPE_UINT4, &lo, &hi);
	assert_true(lo == 0 && hi == 15);
	qcal_dtype_range(QCAL_DTYPE_INT32, &lo, &hi);
	assert_true(lo == INT32_MIN && hi == INT32_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_per_tensor_matches_torch),
		cmocka_unit_test(test_per_channel_matches_torch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
