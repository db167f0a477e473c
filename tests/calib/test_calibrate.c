/*
 * End-to-end calibration on the 64 reference images of swin-micro-cifar10:
 * int8-default and j5 produce complete, valid scale tables whose
 * fake-quantized models stay close to float; fixed and statistical points
 * come out as the config says; the result does not depend on the thread
 * count; and the scale file written from it reloads bit-exactly.
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

#include "calib/calibrate.h"
#include "calib/evaluate.h"
#include "calib/qconfig.h"
#include "calib/qmodel.h"
#include "calib/scales.h"
#include "core/h5.h"
#include "tests/common/test_util.h"

struct env {
	struct swin_model model;
	struct qp_table table;
	float *normalised, *folded;  /* (64, 3, 32, 32) */
	int *labels;
	int n;
	char dir[256];
};

struct mem_source {
	const float *images;
	const int *labels;
	int n, next, batch;
};

static enum qcal_status mem_next(void *user, struct eval_batch *b, struct qcal_err *err)
{
	struct mem_source *s = user;
	(void)err;
	int k = s->n - s->next < s->batch ? s->n - s->next : s->batch;
	b->images = s->images + (size_t)s->next * 3 * 32 * 32;
	b->labels = s->labels + s->next;
	b->count = k;
	s->next += k;
	return QCAL_OK;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char path[512];
	struct qcal_err err;
	struct qcal_h5_shape shape;
	float *u8;
	int64_t *labels;

	test_source_path(path, sizeof(path), "models/swin-micro-cifar10.h5");
	if (swin_model_load(&e->model, path, &err) != QCAL_OK ||
	    qp_table_init(&e->table, &e->model.cfg, &e->model.table, &err) != QCAL_OK)
		return -1;
	test_shared_path(path, sizeof(path), "models/swin-micro-cifar10/reference.h5");
	hid_t f = qcal_h5_open_read(path, &err);
	if (f < 0)
		return -1;
	qcal_h5_read_float(f, path, "input", &e->normalised, &shape, &err);
	qcal_h5_read_float(f, path, "images_u8", &u8, NULL, &err);
	qcal_h5_read_int64(f, path, "labels", &labels, NULL, &err);
	H5Fclose(f);
	e->n = (int)shape.dims[0];
	e->labels = malloc((size_t)e->n * sizeof(int));
	e->folded = malloc((size_t)e->n * 3 * 32 * 32 * sizeof(float));
	for (int i = 0; i < e->n; i++) {
		e->labels[i] = (int)labels[i];
		/* images_u8 is NHWC; the folded input is NCHW (p - 128) / 128 */
		for (int c = 0; c < 3; c++)
			for (int y = 0; y < 32; y++)
				for (int x = 0; x < 32; x++)
					e->folded[(((size_t)i * 3 + c) * 32 + y) * 32 + x] =
						(u8[(((size_t)i * 32 + y) * 32 + x) * 3 + c] - 128.0f) / 128.0f;
	}
	free(u8);
	free(labels);
	if (!test_tmpdir(e->dir, sizeof(e->dir)))
		return -1;
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	test_rmtree(e->dir);
	free(e->normalised);
	free(e->folded);
	free(e->labels);
	qp_table_free(&e->table);
	swin_model_free(&e->model);
	free(e);
	return 0;
}

static void calibrate(struct env *e, const char *config_name, const char *observer,
		      int threads, struct qconfig *cfg, struct scale_table *st)
{
	char path[512], rel[128];
	struct qcal_err err;
	struct calib_session *s;
	struct calib_options opt = { .batch = 16, .threads = threads, .observer = observer };

	snprintf(rel, sizeof(rel), "configs/%s.yaml", config_name);
	test_source_path(path, sizeof(path), rel);
	if (qconfig_load(cfg, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	if (calib_session_create(&s, &e->model, cfg, &opt, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	struct mem_source src = { cfg->fold_input ? e->folded : e->normalised, e->labels, e->n, 0, 16 };
	size_t images = 0;
	if (calib_session_observe(s, mem_next, &src, &images, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(images, (size_t)e->n);
	if (calib_session_scales(s, &e->table, st, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	calib_session_free(s);
}

static void evaluate(struct env *e, const struct scale_table *st, struct metrics *m)
{
	struct qmodel qm;
	struct qcal_err err;
	struct eval_options opt = { .batch = 16, .threads = 2 };
	struct mem_source src = { st->input_folded ? e->folded : e->normalised, e->labels, e->n, 0, 16 };

	if (qmodel_init(&qm, &e->model, st, 2, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	if (eval_run(&e->model, &qm, mem_next, &src, &opt, m, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	qmodel_free(&qm);
}

static void test_int8_default(void **state)
{
	struct env *e = *state;
	struct qconfig cfg;
	struct scale_table st;
	struct metrics m;

	calibrate(e, "int8-default", NULL, 2, &cfg, &st);
	assert_int_equal(scale_table_count_quantized(&st), st.table->count);
	assert_false(st.input_folded);
	int in = qp_table_find(st.table, "input");
	printf("  input scale %.6g (observed %.4f..%.4f)\n", st.points[in].scales[0],
	       st.points[in].observed_min, st.points[in].observed_max);
	assert_false(st.points[in].fixed);
	/* torch: max(|min|, |max|) / ((qmax - qmin) / 2) */
	assert_true(fabs(st.points[in].scales[0] * 127.5 - fmax(-st.points[in].observed_min,
							      st.points[in].observed_max)) < 1e-5);
	evaluate(e, &st, &m);
	printf("  int8-default on 64 images: top-1 %.4f (float %.4f), agreement %.4f, logit SQNR %.2f dB\n",
	       metrics_top1(&m), metrics_float_top1(&m), metrics_agreement(&m), metrics_sqnr_db(&m));
	assert_true(metrics_sqnr_db(&m) > 5.0);
	assert_true(metrics_agreement(&m) > 0.5);
	scale_table_free(&st);
	qconfig_free(&cfg);
}

static void test_j5_and_round_trip(void **state)
{
	struct env *e = *state;
	struct qconfig cfg;
	struct scale_table st, back;
	struct metrics m;
	struct qcal_err err;
	char path[512];

	calibrate(e, "j5", NULL, 2, &cfg, &st);
	assert_true(st.input_folded);
	int in = qp_table_find(st.table, "input");
	assert_true(st.points[in].fixed && st.points[in].scales[0] == 1.0f / 128);
	printf("  j5 input observed range %.5f..%.5f (fixed scale 1/128)\n",
	       st.points[in].observed_min, st.points[in].observed_max);
	assert_true(st.points[in].observed_min >= -1.0 && st.points[in].observed_max <= 127.0 / 128);
	int rpb = qp_table_find(st.table, "features.1.0.attn.relative_position_bias");
	assert_false(st.points[rpb].fixed);
	assert_true(st.points[rpb].observed_max > st.points[rpb].observed_min);
	assert_int_equal(st.points[qp_table_find(st.table, "head.out")].dtype, QCAL_DTYPE_INT32);
	assert_int_equal(st.points[qp_table_find(st.table, "features.3.1.norm2.var")].dtype,
			 QCAL_DTYPE_INT16);
	evaluate(e, &st, &m);
	printf("  j5 on 64 images: top-1 %.4f (float %.4f), agreement %.4f, logit SQNR %.2f dB\n",
	       metrics_top1(&m), metrics_float_top1(&m), metrics_agreement(&m), metrics_sqnr_db(&m));
	assert_true(metrics_agreement(&m) > 0.9);
	snprintf(path, sizeof(path), "%s/j5.json", e->dir);
	assert_int_equal(scale_table_write_json(&st, path, &err), QCAL_OK);
	if (scale_table_read_json(&back, st.table, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	for (int i = 0; i < st.table->count; i++) {
		assert_int_equal(st.points[i].quantized, back.points[i].quantized);
		if (st.points[i].quantized)
			assert_int_equal(memcmp(st.points[i].scales, back.points[i].scales,
						(size_t)st.points[i].channels * sizeof(float)), 0);
	}
	scale_table_free(&back);
	scale_table_free(&st);
	qconfig_free(&cfg);
}

static void test_thread_count_independent(void **state)
{
	struct env *e = *state;
	struct qconfig c1, c2;
	struct scale_table a, b;

	calibrate(e, "j5", "entropy", 1, &c1, &a);
	calibrate(e, "j5", "entropy", 2, &c2, &b);
	for (int i = 0; i < a.table->count; i++)
		if (a.points[i].quantized)
			assert_int_equal(memcmp(a.points[i].scales, b.points[i].scales,
						(size_t)a.points[i].channels * sizeof(float)), 0);
	scale_table_free(&a);
	scale_table_free(&b);
	qconfig_free(&c1);
	qconfig_free(&c2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_int8_default),
		cmocka_unit_test(test_j5_and_round_trip),
		cmocka_unit_test(test_thread_count_independent),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
