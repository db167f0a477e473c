/*
 * Float parity with PyTorch: both shared fixtures are run through the C
 * forward and compared with torchvision's logits and every
 * stage_out/features.<i> of reference.h5 (max|diff| <= 1e-4 * max|ref|).
 * The same comparison runs for the decomposed (quantization-ready) path and
 * for the naive-loop GEMM twin, and one test checks that the checker itself
 * fails on a deliberately perturbed tensor.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "model/qpoint.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"
#include "tests/common/test_util.h"

#define REL_TOL 1e-4

struct fixture {
	struct swin_model model;
	float *input, *logits;
	struct qcal_h5_shape input_shape;
	hid_t ref;
	char ref_path[512];
};

static void load_fixture(struct fixture *f, const char *name)
{
	char path[512], rel[256];
	struct qcal_err err;

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
					    &f->input_shape, &err), QCAL_OK);
	assert_int_equal(qcal_h5_read_float(f->ref, f->ref_path, "logits", &f->logits,
					    NULL, &err), QCAL_OK);
}

static void free_fixture(struct fixture *f)
{
	free(f->input);
	free(f->logits);
	H5Fclose(f->ref);
	swin_model_free(&f->model);
}

/*
 * Run the forward in the given configuration and compare the logits, and for
 * training plans (which keep every activation) every stage output.
 */
static int check_parity(struct fixture *f, int batch, unsigned flags,
			const struct swin_kernels *kernels, const char *label)
{
	struct swin_plan plan;
	struct qcal_err err;
	struct qp_table table;
	struct qp_ctx ctx = { .mode = QP_MODE_OBSERVE, .table = &table };
	int failures = 0;
	const struct swin_config *c = &f->model.cfg;

	printf("%s (%s, batch %d):\n", c->name, label, batch);
	assert_int_equal(swin_plan_init(&plan, c, batch, flags, 0, kernels, &err),
			 QCAL_OK);
	assert_int_equal(qp_table_init(&table, c, &f->model.table, &err), QCAL_OK);
	assert_int_equal(swin_forward(&plan, &f->model, NULL,
				      (flags & SWIN_PLAN_DECOMPOSED) ? &ctx : NULL,
				      f->input, batch, &err), QCAL_OK);
	failures += test_report_diff("logits", plan.logits, f->logits,
				     (size_t)batch * c->num_classes, REL_TOL);
	/* Inference plans reuse buffers across blocks: only logits survive. */
	for (int i = 0; flags & SWIN_PLAN_TRAIN; i++) {
		char name[64];
		size_t per_image;
		float *ref = NULL;
		const float *got = swin_plan_feature(&plan, i, &per_image);
		if (!got)
			break;
		snprintf(name, sizeof(name), "stage_out/features.%d", i);
		assert_int_equal(qcal_h5_read_float(f->ref, f->ref_path, name, &ref,
						    NULL, &err), QCAL_OK);
		failures += test_report_diff(name, got, ref, per_image * batch, REL_TOL);
		free(ref);
	}
	qp_table_free(&table);
	swin_plan_free(&plan);
	return failures;
}

static void test_micro_blas(void **state)
{
	struct fixture f;
	(void)state;
	load_fixture(&f, "swin-micro-cifar10");
	assert_int_equal(check_parity(&f, (int)f.input_shape.dims[0], SWIN_PLAN_TRAIN,
				      NULL, "openblas, fused"), 0);
	assert_int_equal(check_parity(&f, (int)f.input_shape.dims[0], 0, NULL,
				      "openblas, inference plan"), 0);
	free_fixture(&f);
}

static void test_micro_decomposed(void **state)
{
	struct fixture f;
	(void)state;
	load_fixture(&f, "swin-micro-cifar10");
	assert_int_equal(check_parity(&f, (int)f.input_shape.dims[0],
				      SWIN_PLAN_DECOMPOSED | SWIN_PLAN_TRAIN, NULL,
				      "openblas, decomposed"), 0);
	free_fixture(&f);
}

static void test_micro_naive(void **state)
{
	struct fixture f;
	(void)state;
	load_fixture(&f, "swin-micro-cifar10");
	assert_int_equal(check_parity(&f, 8, SWIN_PLAN_TRAIN, swin_kernels_naive(),
				      "naive loops"), 0);
	free_fixture(&f);
}

static void test_structure_blas(void **state)
{
	struct fixture f;
	(void)state;
	load_fixture(&f, "swin-t-structure");
	assert_int_equal(check_parity(&f, (int)f.input_shape.dims[0], SWIN_PLAN_TRAIN,
				      NULL, "openblas, fused"), 0);
	assert_int_equal(check_parity(&f, (int)f.input_shape.dims[0], 0, NULL,
				      "openblas, inference plan"), 0);
	assert_int_equal(check_parity(&f, (int)f.input_shape.dims[0],
				      SWIN_PLAN_DECOMPOSED | SWIN_PLAN_TRAIN, NULL,
				      "openblas, decomposed"), 0);
	free_fixture(&f);
}

static void test_structure_naive(void **state)
{
	struct fixture f;
	(void)state;
	load_fixture(&f, "swin-t-structure");
	assert_int_equal(check_parity(&f, 1, SWIN_PLAN_TRAIN, swin_kernels_naive(),
				      "naive loops"), 0);
	free_fixture(&f);
}

/* The checker must reject a discrepancy just above the tolerance. */
static void test_checker_detects_error(void **state)
{
	float ref[4] = { 1.0f, -2.0f, 3.0f, 4.0f };
	float got[4] = { 1.0f, -2.0f, 3.0f, 4.0f };
	(void)state;
	assert_int_equal(test_report_diff("identical", got, ref, 4, REL_TOL), 0);
	got[2] += 4.0f * 1.5e-4f;
	assert_int_not_equal(test_report_diff("perturbed", got, ref, 4, REL_TOL), 0);
	got[2] = 0.0f / 0.0f;
	assert_int_not_equal(test_report_diff("nan", got, ref, 4, REL_TOL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checker_detects_error),
		cmocka_unit_test(test_micro_blas),
		cmocka_unit_test(test_micro_decomposed),
		cmocka_unit_test(test_micro_naive),
		cmocka_unit_test(test_structure_blas),
		cmocka_unit_test(test_structure_naive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
