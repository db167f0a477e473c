/*
 * The evaluation loop on the 64 reference images of swin-micro-cifar10:
 * float top-1 equals what PyTorch's logits give, an all-float scale table
 * reproduces float exactly (agreement 100%, infinite SQNR), and int8 fake
 * quantization with crude scales lowers the SQNR to a finite value; NaN
 * logits stop the loop with the image named.
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

#include "calib/evaluate.h"
#include "calib/metrics.h"
#include "calib/qmodel.h"
#include "calib/scales.h"
#include "core/h5.h"
#include "tests/common/test_util.h"

struct source {
	const float *images;
	const int *labels;
	int total, next, batch;
	size_t per_image;
};

static enum qcal_status next_batch(void *user, struct eval_batch *b, struct qcal_err *err)
{
	struct source *s = user;
	(void)err;
	int n = s->total - s->next < s->batch ? s->total - s->next : s->batch;
	b->images = s->images + (size_t)s->next * s->per_image;
	b->labels = s->labels + s->next;
	b->count = n;
	s->next += n;
	return QCAL_OK;
}

struct env {
	struct swin_model model;
	struct qp_table table;
	float *input, *logits;
	int *labels;
	int n;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char path[512];
	struct qcal_err err;
	struct qcal_h5_shape shape;
	int64_t *labels;

	test_shared_path(path, sizeof(path), "models/swin-micro-cifar10/weights.h5");
	if (swin_model_load(&e->model, path, &err) != QCAL_OK)
		return -1;
	qp_table_init(&e->table, &e->model.cfg, &e->model.table, &err);
	test_shared_path(path, sizeof(path), "models/swin-micro-cifar10/reference.h5");
	hid_t f = qcal_h5_open_read(path, &err);
	if (f < 0)
		return -1;
	qcal_h5_read_float(f, path, "input", &e->input, &shape, &err);
	qcal_h5_read_float(f, path, "logits", &e->logits, NULL, &err);
	qcal_h5_read_int64(f, path, "labels", &labels, NULL, &err);
	H5Fclose(f);
	e->n = (int)shape.dims[0];
	e->labels = malloc((size_t)e->n * sizeof(int));
	for (int i = 0; i < e->n; i++)
		e->labels[i] = (int)labels[i];
	free(labels);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	free(e->input);
	free(e->logits);
	free(e->labels);
	qp_table_free(&e->table);
	swin_model_free(&e->model);
	free(e);
	return 0;
}

static void run(struct env *e, const struct qmodel *qm, struct metrics *m)
{
	struct source src = { e->input, e->labels, e->n, 0, 24, 3 * 32 * 32 };
	struct eval_options opt = { .batch = 24, .threads = 2, .total = (size_t)e->n };
	struct qcal_err err;
	if (eval_run(&e->model, qm, next_batch, &src, &opt, m, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
}

static void test_float_top1_matches_torch(void **state)
{
	struct env *e = *state;
	struct metrics m, torch;

	run(e, NULL, &m);
	metrics_init(&torch);
	metrics_add(&torch, e->logits, NULL, e->labels, e->n, 10);
	printf("  float top-1 on %d reference images: qcal %.4f, PyTorch logits %.4f\n",
	       e->n, metrics_top1(&m), metrics_top1(&torch));
	assert_int_equal(m.images, e->n);
	assert_int_equal(m.top1, torch.top1);
	assert_int_equal(m.top5, torch.top5);
	assert_true(isnan(metrics_agreement(&m)));
}

static void test_identity_scales_reproduce_float(void **state)
{
	struct env *e = *state;
	struct scale_table st;
	struct qmodel qm;
	struct metrics m;
	struct qcal_err err;

	assert_int_equal(scale_table_init(&st, &e->table, &err), QCAL_OK);
	assert_int_equal(qmodel_init(&qm, &e->model, &st, 2, &err), QCAL_OK);
	run(e, &qm, &m);
	printf("  all-float scales: agreement %.4f, SQNR %g dB\n", metrics_agreement(&m),
	       metrics_sqnr_db(&m));
	assert_true(metrics_agreement(&m) == 1.0);
	/* decomposed vs fused float paths differ only by rounding */
	assert_true(metrics_sqnr_db(&m) > 100.0);
	qmodel_free(&qm);
	scale_table_free(&st);
}

static void test_int8_input_lowers_sqnr(void **state)
{
	struct env *e = *state;
	struct scale_table st;
	struct qmodel qm;
	struct metrics m;
	struct qcal_err err;
	float s = 4.0f / 127.0f;

	assert_int_equal(scale_table_init(&st, &e->table, &err), QCAL_OK);
	for (int i = 0; i < e->table.count; i++)
		if (e->table.points[i].kind == QP_KIND_INPUT ||
		    e->table.points[i].kind == QP_KIND_LN_OUT)
			scale_point_set(&st.points[i], QCAL_DTYPE_INT8, true, 1, &s, NULL, &err);
	assert_int_equal(qmodel_init(&qm, &e->model, &st, 2, &err), QCAL_OK);
	run(e, &qm, &m);
	printf("  int8 input + LayerNorm outputs at scale 4/127: agreement %.4f, SQNR %.2f dB, KL %.2e\n",
	       metrics_agreement(&m), metrics_sqnr_db(&m), metrics_mean_kl(&m));
	assert_true(isfinite(metrics_sqnr_db(&m)) && metrics_sqnr_db(&m) > 5.0);
	assert_true(metrics_sqnr_db(&m) < 60.0);
	assert_true(metrics_mean_kl(&m) > 0);
	qmodel_free(&qm);
	scale_table_free(&st);
}

/* A NaN in one image's input makes its logits NaN: the loop stops there,
 * naming the image, instead of counting argmax(NaN) = class 0 as a guess. */
static void test_non_finite_logits_are_refused(void **state)
{
	struct env *e = *state;
	size_t per_image = 3 * 32 * 32;
	float *input = malloc((size_t)e->n * per_image * sizeof(float));
	struct source src = { input, e->labels, e->n, 0, 24, per_image };
	struct eval_options opt = { .batch = 24, .threads = 2, .total = (size_t)e->n };
	struct metrics m;
	struct qcal_err err;

	assert_non_null(input);
	memcpy(input, e->input, (size_t)e->n * per_image * sizeof(float));
	input[30 * per_image + 100] = NAN;
	assert_int_equal(eval_run(&e->model, NULL, next_batch, &src, &opt, &m, &err), QCAL_ERANGE);
	printf("  %s\n", err.msg);
	assert_non_null(strstr(err.msg, "float model's logits for image 30"));
	assert_non_null(strstr(err.msg, "not finite"));
	/* the first batch (images 0..23) was counted before the stop */
	assert_int_equal(m.images, 24);
	free(input);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_float_top1_matches_torch),
		cmocka_unit_test(test_identity_scales_reproduce_float),
		cmocka_unit_test(test_int8_input_lowers_sqnr),
		cmocka_unit_test(test_non_finite_logits_are_refused),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
