/*
 * Backward parity with PyTorch autograd: for both shared fixtures, the full
 * reference batch goes through the float forward (training plan) and
 * loss_cross_entropy, then swin_backward; the loss must equal reference.h5's
 * `loss` and every `grad/<parameter>` and `grad/input` must agree to
 * max|diff| <= 1e-3 * max|ref| (printed per tensor).  The naive-loop GEMM
 * twin (double accumulators) must give the same gradients as OpenBLAS on a
 * few images.  A last test checks that the comparison fails on a gradient
 * perturbed by a deliberate 2e-3 * max error.
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
#include "model/loss.h"
#include "model/swin_backward.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"
#include "tests/common/test_util.h"

#define REL_TOL 1e-3

struct fixture {
	struct swin_model model;
	float *input;
	int *labels;
	int batch;
	float loss;
	hid_t ref;
	char ref_path[512];
};

static void load_fixture(struct fixture *f, const char *name)
{
	char path[512], rel[256];
	struct qcal_err err;
	struct qcal_h5_shape shape;
	int64_t *labels = NULL;
	float *loss = NULL;

	memset(f, 0, sizeof(*f));
	snprintf(rel, sizeof(rel), "models/%s/weights.h5", name);
	test_shared_path(path, sizeof(path), rel);
	if (swin_model_load(&f->model, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	snprintf(rel, sizeof(rel), "models/%s/reference.h5", name);
	test_shared_path(f->ref_path, sizeof(f->ref_path), rel);
	f->ref = qcal_h5_open_read(f->ref_path, &err);
	assert_true(f->ref >= 0);
	assert_int_equal(qcal_h5_read_float(f->ref, f->ref_path, "input", &f->input,
					    &shape, &err), QCAL_OK);
	f->batch = (int)shape.dims[0];
	assert_int_equal(qcal_h5_read_int64(f->ref, f->ref_path, "labels", &labels,
					    NULL, &err), QCAL_OK);
	assert_int_equal(qcal_h5_read_float(f->ref, f->ref_path, "loss", &loss, NULL,
					    &err), QCAL_OK);
	f->labels = malloc((size_t)f->batch * sizeof(int));
	assert_non_null(f->labels);
	for (int b = 0; b < f->batch; b++)
		f->labels[b] = (int)labels[b];
	f->loss = loss[0];
	free(labels);
	free(loss);
}

static void free_fixture(struct fixture *f)
{
	free(f->input);
	free(f->labels);
	H5Fclose(f->ref);
	swin_model_free(&f->model);
}

/* Compare one flat gradient tensor with reference.h5's grad/<name>; returns
 * nonzero on failure. */
static int check_tensor(struct fixture *f, const char *name, const float *got,
			size_t n, double *worst_ratio)
{
	char key[160];
	struct qcal_err err;
	struct qcal_h5_shape shape;
	float *ref = NULL;

	snprintf(key, sizeof(key), "grad/%s", name);
	if (qcal_h5_read_float(f->ref, f->ref_path, key, &ref, &shape, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(qcal_h5_shape_numel(&shape), n);
	struct test_diff d = test_compare(got, ref, n);
	double ratio = d.max_abs_ref > 0 ? d.max_abs_diff / d.max_abs_ref : d.max_abs_diff;
	if (ratio > *worst_ratio || isnan(ratio))
		*worst_ratio = ratio;
	int bad = test_report_diff(key, got, ref, n, REL_TOL);
	free(ref);
	return bad;
}

/* Forward + cross-entropy + backward of the first `batch` reference images;
 * grads (table.numel) and dinput are accumulated into (caller zeroes). */
static double run_backward(struct fixture *f, const struct swin_kernels *kernels,
			   int batch, float *grads, float *dinput)
{
	const struct swin_config *c = &f->model.cfg;
	struct swin_plan plan;
	struct swin_backward_plan bp;
	struct swin_weights dw;
	struct qcal_err err;
	float *dlogits = calloc((size_t)batch * c->num_classes, sizeof(float));
	double loss;

	assert_non_null(dlogits);
	assert_int_equal(swin_plan_init(&plan, c, batch, SWIN_PLAN_TRAIN, 0, kernels,
					&err), QCAL_OK);
	assert_int_equal(swin_backward_plan_init(&bp, &plan, &err), QCAL_OK);
	assert_int_equal(swin_weights_bind(&dw, c, &f->model.table, grads), QCAL_OK);
	assert_int_equal(swin_forward(&plan, &f->model, NULL, NULL, f->input, batch,
				      &err), QCAL_OK);
	assert_int_equal(loss_cross_entropy(&loss, dlogits, plan.logits, f->labels,
					    batch, c->num_classes, 0.0, 1.0, &err), QCAL_OK);
	if (swin_backward(&bp, &plan, &f->model, NULL, NULL, dlogits, batch, &dw,
			  dinput, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	swin_weights_unbind(&dw);
	swin_backward_plan_free(&bp);
	swin_plan_free(&plan);
	free(dlogits);
	return loss;
}

/* The whole reference batch against PyTorch: loss and every gradient.
 * Returns the number of failing tensors. */
static int check_backward(struct fixture *f)
{
	const struct swin_config *c = &f->model.cfg;
	size_t in_numel = (size_t)f->batch * c->in_chans * c->img_size * c->img_size;
	float *grads = calloc(f->model.table.numel, sizeof(float));
	float *dinput = calloc(in_numel, sizeof(float));
	double worst = 0.0;
	int failures = 0;

	assert_non_null(grads);
	assert_non_null(dinput);
	printf("%s (batch %d):\n", c->name, f->batch);
	double loss = run_backward(f, NULL, f->batch, grads, dinput);
	printf("  loss = %.7f  reference = %.7f  |diff| = %.2e\n", loss, f->loss,
	       fabs(loss - f->loss));
	failures += !(fabs(loss - f->loss) <= 1e-5 * fabs(f->loss));
	for (int i = 0; i < f->model.table.count; i++) {
		const struct swin_param_spec *s = &f->model.table.specs[i];
		failures += check_tensor(f, s->name, grads + s->offset, s->numel, &worst);
	}
	failures += check_tensor(f, "input", dinput, in_numel, &worst);
	printf("  %d tensors, worst max|diff|/max|ref| = %.2e, %d failing\n",
	       f->model.table.count + 1, worst, failures);
	free(grads);
	free(dinput);
	return failures;
}

static void test_micro(void **state)
{
	struct fixture f;
	(void)state;
	load_fixture(&f, "swin-micro-cifar10");
	assert_int_equal(check_backward(&f), 0);
	free_fixture(&f);
}

static void test_structure(void **state)
{
	struct fixture f;
	(void)state;
	load_fixture(&f, "swin-t-structure");
	assert_int_equal(check_backward(&f), 0);
	free_fixture(&f);
}

/* Naive double-accumulating GEMMs give the OpenBLAS gradients (4 images). */
static void test_naive_twin(void **state)
{
	struct fixture f;
	const int B = 4;
	(void)state;
	load_fixture(&f, "swin-micro-cifar10");
	size_t n = f.model.table.numel;
	size_t in_numel = (size_t)B * f.model.cfg.in_chans * f.model.cfg.img_size *
			  f.model.cfg.img_size;
	float *g1 = calloc(n, sizeof(float)), *g2 = calloc(n, sizeof(float));
	float *d1 = calloc(in_numel, sizeof(float)), *d2 = calloc(in_numel, sizeof(float));
	assert_true(g1 && g2 && d1 && d2);
	double l1 = run_backward(&f, NULL, B, g1, d1);
	double l2 = run_backward(&f, swin_kernels_naive(), B, g2, d2);
	printf("naive twin, batch %d: loss %.7f vs %.7f\n", B, l1, l2);
	assert_true(fabs(l1 - l2) <= 1e-5 * fabs(l1));
	int failures = 0;
	double worst = 0.0;
	for (int i = 0; i < f.model.table.count; i++) {
		const struct swin_param_spec *s = &f.model.table.specs[i];
		struct test_diff d = test_compare(g2 + s->offset, g1 + s->offset, s->numel);
		double r = d.max_abs_ref > 0 ? d.max_abs_diff / d.max_abs_ref : d.max_abs_diff;
		worst = r > worst ? r : worst;
		failures += !(r <= 1e-4);
	}
	failures += test_report_diff("input (naive vs openblas)", d2, d1, in_numel, 1e-4);
	printf("  worst parameter max|diff|/max|ref| = %.2e, %d failing\n", worst, failures);
	assert_int_equal(failures, 0);
	free(g1);
	free(g2);
	free(d1);
	free(d2);
	free_fixture(&f);
}

/* The comparison must fail when one gradient entry is off by 2e-3 * max. */
static void test_checker_detects_error(void **state)
{
	struct fixture f;
	double worst = 0.0;
	float *ref = NULL;
	struct qcal_err err;
	struct qcal_h5_shape shape;
	(void)state;
	load_fixture(&f, "swin-micro-cifar10");
	assert_int_equal(qcal_h5_read_float(f.ref, f.ref_path, "grad/head.weight", &ref,
					    &shape, &err), QCAL_OK);
	size_t n = qcal_h5_shape_numel(&shape);
	assert_int_equal(check_tensor(&f, "head.weight", ref, n, &worst), 0);
	struct test_diff d = test_compare(ref, ref, n);
	ref[n / 2] += (float)(2e-3 * d.max_abs_ref);
	assert_int_not_equal(check_tensor(&f, "head.weight", ref, n, &worst), 0);
	free(ref);
	free_fixture(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checker_detects_error),
		cmocka_unit_test(test_micro),
		cmocka_unit_test(test_structure),
		cmocka_unit_test(test_naive_twin),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
