/*
 * Scale files: JSON round trips bit-exactly, the HDF5 and TensorRT exports
 * hold what they should, and malformed files fail naming file and point.
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

#include "calib/scales.h"
#include "core/atomic_file.h"
#include "core/h5.h"
#include "core/rng.h"
#include "model/qpoint.h"
#include "model/swin_model.h"
#include "tests/common/test_util.h"

struct env {
	struct swin_model model;
	struct qp_table table;
	char dir[256];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char path[512];
	struct qcal_err err;

	test_source_path(path, sizeof(path), "models/swin-micro-cifar10.h5");
	if (swin_model_load(&e->model, path, &err) != QCAL_OK ||
	    qp_table_init(&e->table, &e->model.cfg, &e->model.table, &err) != QCAL_OK)
		return -1;
	if (!test_tmpdir(e->dir, sizeof(e->dir)))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	test_rmtree(e->dir);
	qp_table_free(&e->table);
	swin_model_free(&e->model);
	free(e);
	return 0;
}

/* Random but valid scales on every point; a few points left float. */
static void fill_random(struct env *e, struct scale_table *st)
{
	struct qcal_rng rng;
	struct qcal_err err;

	qcal_rng_seed(&rng, 7);
	assert_int_equal(scale_table_init(st, &e->table, &err), QCAL_OK);
	st->model_name = strdup("swin-micro-cifar10");
	st->config_name = strdup("test");
	st->input_folded = true;
	st->images = 123;
	st->seed = 42;
	for (int i = 0; i < e->table.count; i++) {
		const struct qp_point *q = &e->table.points[i];
		int ch = q->role == QP_ROLE_WEIGHT ? q->channels : 1;
		float s[4096];
		int32_t z[4096];
		if (i % 17 == 5 && q->role != QP_ROLE_WEIGHT)
			continue; /* stays float */
		for (int c = 0; c < ch; c++) {
			/* awkward float32 values: not short decimals */
			s[c] = qcal_rng_uniform(&rng) * 0.3f + 1e-7f;
			z[c] = q->role == QP_ROLE_WEIGHT ? 0 : (int32_t)(qcal_rng_below(&rng, 200)) - 100;
		}
		enum qcal_dtype dt = i % 3 == 0 ? QCAL_DTYPE_INT16 : QCAL_DTYPE_INT8;
		assert_int_equal(scale_point_set(&st->points[i], dt, z[0] == 0, ch, s, z, &err), QCAL_OK);
		st->points[i].observed_min = -qcal_rng_uniform(&rng);
		st->points[i].observed_max = qcal_rng_uniform(&rng);
		st->points[i].count = 1000 + (uint64_t)i;
		snprintf(st->points[i].observer, sizeof(st->points[i].observer), "minmax");
	}
}

static void test_json_round_trip_bit_exact(void **state)
{
	struct env *e = *state;
	struct scale_table a, b;
	struct qcal_err err;
	char path[512];

	fill_random(e, &a);
	snprintf(path, sizeof(path), "%s/scales.json", e->dir);
	assert_int_equal(scale_table_write_json(&a, path, &err), QCAL_OK);
	if (scale_table_read_json(&b, &e->table, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	int compared = 0;
	for (int i = 0; i < e->table.count; i++) {
		const struct scale_point *p = &a.points[i], *q = &b.points[i];
		assert_int_equal(p->quantized, q->quantized);
		if (!p->quantized)
			continue;
		assert_int_equal(p->dtype, q->dtype);
		assert_int_equal(p->channels, q->channels);
		assert_int_equal(memcmp(p->scales, q->scales, (size_t)p->channels * sizeof(float)), 0);
		assert_int_equal(memcmp(p->zero_points, q->zero_points,
					(size_t)p->channels * sizeof(int32_t)), 0);
		assert_true(p->observed_min == q->observed_min);
		assert_true(p->count == q->count);
		compared += p->channels;
	}
	printf("  %d scales compared bit for bit across %d points\n", compared, e->table.count);
	assert_true(compared > e->table.count);
	assert_string_equal(b.model_name, "swin-micro-cifar10");
	assert_true(b.input_folded);
	assert_int_equal(b.images, 123);
	/* writing the read table again gives the same bytes */
	char path2[512], *t1, *t2;
	size_t n1, n2;
	snprintf(path2, sizeof(path2), "%s/scales2.json", e->dir);
	assert_int_equal(scale_table_write_json(&b, path2, &err), QCAL_OK);
	assert_int_equal(qcal_read_file(path, &t1, &n1, &err), QCAL_OK);
	assert_int_equal(qcal_read_file(path2, &t2, &n2, &err), QCAL_OK);
	assert_int_equal(n1, n2);
	assert_int_equal(memcmp(t1, t2, n1), 0);
	free(t1);
	free(t2);
	scale_table_free(&a);
	scale_table_free(&b);
}

static void test_tensorrt_cache(void **state)
{
	struct env *e = *state;
	struct scale_table a;
	struct qcal_err err;
	char path[512], *text;
	size_t len;

	fill_random(e, &a);
	snprintf(path, sizeof(path), "%s/calib.cache", e->dir);
	assert_int_equal(scale_table_write_tensorrt(&a, path, 8601, &err), QCAL_OK);
	assert_int_equal(qcal_read_file(path, &text, &len, &err), QCAL_OK);
	assert_true(strncmp(text, "TRT-8601-EntropyCalibration2\n", 29) == 0);
	/* the input's line decodes back to its scale */
	int idx = qp_table_find(&e->table, "input");
	char needle[64];
	uint32_t bits;
	memcpy(&bits, &a.points[idx].scales[0], 4);
	snprintf(needle, sizeof(needle), "\ninput: %08x\n", bits);
	assert_non_null(strstr(text, needle));
	assert_null(strstr(text, ".weight:"));
	free(text);
	scale_table_free(&a);
}

static void test_hdf5_export(void **state)
{
	struct env *e = *state;
	struct scale_table a;
	struct qcal_err err;
	char path[512];
	float *scale = NULL, *qw = NULL;
	struct qcal_h5_shape shape;

	fill_random(e, &a);
	snprintf(path, sizeof(path), "%s/scales.h5", e->dir);
	assert_int_equal(scale_table_write_hdf5(&a, &e->model, path, &err), QCAL_OK);
	hid_t f = qcal_h5_open_read(path, &err);
	assert_true(f >= 0);
	int idx = qp_table_find(&e->table, "head.weight");
	assert_true(a.points[idx].quantized);
	assert_int_equal(qcal_h5_read_float(f, path, "points/head.weight/scale", &scale, &shape, &err), QCAL_OK);
	assert_int_equal(shape.dims[0], 10);
	assert_int_equal(memcmp(scale, a.points[idx].scales, 10 * sizeof(float)), 0);
	assert_int_equal(qcal_h5_read_float(f, path, "points/head.weight/qweight", &qw, &shape, &err), QCAL_OK);
	assert_int_equal(shape.ndim, 2);
	/* integers reproduce the fake-quantized weights */
	const float *w = e->model.w.head_w;
	for (int c = 0; c < 10; c++)
		for (int k = 0; k < 192; k++) {
			float s = a.points[idx].scales[c];
			float fq = fminf(fmaxf(nearbyintf(w[c * 192 + k] * (1.0f / s)), -128), 127) * s;
			assert_true(qw[c * 192 + k] * s == fq);
		}
	free(scale);
	free(qw);
	H5Fclose(f);
	scale_table_free(&a);
}

/* Write a file, edit one substring, expect the reader to reject it. */
static void expect_reject(struct env *e, const char *from, const char *to,
			  const char *needle)
{
	struct scale_table a, b;
	struct qcal_err err = { 0 };
	char path[512], *text;
	size_t len;

	fill_random(e, &a);
	snprintf(path, sizeof(path), "%s/bad.json", e->dir);
	assert_int_equal(scale_table_write_json(&a, path, &err), QCAL_OK);
	assert_int_equal(qcal_read_file(path, &text, &len, &err), QCAL_OK);
	char *at = strstr(text, from);
	assert_non_null(at);
	size_t nlen = len - strlen(from) + strlen(to);
	char *edited = malloc(nlen + 1);
	memcpy(edited, text, (size_t)(at - text));
	strcpy(edited + (at - text), to);
	strcat(edited, at + strlen(from));
	assert_int_equal(qcal_write_file_atomic(path, edited, strlen(edited), &err), QCAL_OK);
	enum qcal_status st = scale_table_read_json(&b, &e->table, path, &err);
	printf("  %s\n", err.msg);
	assert_int_not_equal(st, QCAL_OK);
	assert_non_null(strstr(err.msg, "bad.json"));
	assert_non_null(strstr(err.msg, needle));
	free(text);
	free(edited);
	scale_table_free(&a);
}

static void test_rejects_bad_files(void **state)
{
	struct env *e = *state;

	expect_reject(e, "\"version\": 1", "\"version\": 9", "unsupported \"version\" 9");
	expect_reject(e, "\"qcal-scales\"", "\"other\"", "\"format\"");
	expect_reject(e, "\"name\": \"input\"", "\"name\": \"inputs\"", "\"inputs\" is not a quantization point");
	expect_reject(e, "\"name\": \"features.0.0.out\"", "\"name\": \"input\"", "listed twice");
	expect_reject(e, "\"dtype\": \"int16\"", "\"dtype\": \"int12\"", "unknown dtype \"int12\"");
	expect_reject(e, "\"scale\": 0.", "\"scale\": -0.", "expected a finite positive number");
	expect_reject(e, "\"scale\": 0.", "\"scale\": \"nan\", \"x\": 0.", "unknown key \"x\"");
	expect_reject(e, "\"shape\": [\n    3,", "\"shape\": [\n    4,", "shape[0] = 4");
	expect_reject(e, "\"points\": [", "\"points\": [], \"pts\": [", "unknown top-level key");
	/* typed fields: a wrong type is an error, not a silent default */
	expect_reject(e, "\"learnable\": false", "\"learnable\": 0",
		      "\"learnable\" must be true or false");
	expect_reject(e, "\"count\": 1000", "\"count\": -5", "\"count\" must be an integer >= 0");
	expect_reject(e, "\"observer\": \"minmax\"", "\"observer\": 3",
		      "\"observer\" must be a string or null");
	expect_reject(e, "\"role\": \"weight\"", "\"role\": \"activation\"",
		      "role \"activation\", the model's point is \"weight\"");
	expect_reject(e, "\"symmetric\": false", "\"symmetric\": true",
		      "symmetric, but zero_point[0]");
	expect_reject(e, "\"input_folded\": true,", "",
		      "\"model\" must be an object with \"input_folded\"");
	expect_reject(e, "\"points\": 262", "\"points\": 7", "\"model\" has 7 points");
	expect_reject(e, "\"images\": 123", "\"images\": \"many\"",
		      "calibration: \"images\" must be an integer >= 0");
}

static void test_rejects_truncated_and_missing(void **state)
{
	struct env *e = *state;
	struct scale_table a, b;
	struct qcal_err err = { 0 };
	char path[512], *text;
	size_t len;

	fill_random(e, &a);
	snprintf(path, sizeof(path), "%s/trunc.json", e->dir);
	assert_int_equal(scale_table_write_json(&a, path, &err), QCAL_OK);
	assert_int_equal(qcal_read_file(path, &text, &len, &err), QCAL_OK);
	assert_int_equal(qcal_write_file_atomic(path, text, len / 2, &err), QCAL_OK);
	assert_int_equal(scale_table_read_json(&b, &e->table, path, &err), QCAL_EFORMAT);
	printf("  %s\n", err.msg);
	assert_non_null(strstr(err.msg, "invalid JSON"));
	free(text);
	snprintf(path, sizeof(path), "%s/does-not-exist.json", e->dir);
	assert_int_equal(scale_table_read_json(&b, &e->table, path, &err), QCAL_ENOENT);
	printf("  %s\n", err.msg);
	scale_table_free(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_round_trip_bit_exact),
		cmocka_unit_test(test_tensorrt_cache),
		cmocka_unit_test(test_hdf5_export),
		cmocka_unit_test(test_rejects_bad_files),
		cmocka_unit_test(test_rejects_truncated_and_missing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
