/*
 * Optimizers against PyTorch: AdamW and SGD trajectories over six steps with
 * a changing learning rate (fixture from make_optim_fixture.py), and the
 * warmup + cosine schedule's known values.
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
#include "qat/optim.h"
#include "tests/common/test_util.h"

static void check_trajectory(const char *name, enum optim_kind kind,
			     double wd)
{
	char path[512];
	struct qcal_err err;
	struct qcal_h5_shape shape;
	float *p0, *grads, *traj, *lrs;
	struct optim_config cfg;
	struct optim_state st;

	test_source_path(path, sizeof(path), "tests/qat/fixtures/optim.h5");
	hid_t f = qcal_h5_open_read(path, &err);
	assert_true(f >= 0);
	assert_int_equal(qcal_h5_read_float(f, path, "p0", &p0, &shape, &err), QCAL_OK);
	size_t n = (size_t)shape.dims[0];
	assert_int_equal(qcal_h5_read_float(f, path, "grads", &grads, &shape, &err), QCAL_OK);
	int steps = (int)shape.dims[0];
	assert_int_equal(qcal_h5_read_float(f, path, "lrs", &lrs, NULL, &err), QCAL_OK);
	assert_int_equal(qcal_h5_read_float(f, path, name, &traj, NULL, &err), QCAL_OK);
	H5Fclose(f);
	/* lrs are stored as float64 but read through float32: recompute exactly */
	optim_config_default(&cfg, kind);
	cfg.weight_decay = wd;
	assert_int_equal(optim_state_init(&st, n, &err), QCAL_OK);
	for (int k = 0; k < steps; k++) {
		double lr = 1e-3 * (k + 1) / steps;
		optim_step(&cfg, &st, p0, grads + (size_t)k * n, NULL, lr);
		double worst = 0;
		size_t exact = 0;
		for (size_t i = 0; i < n; i++) {
			float want = traj[(size_t)k * n + i];
			double d = fabs((double)p0[i] - want) / fmax(fabs(want), 1e-6);
			worst = fmax(worst, d);
			exact += p0[i] == want;
		}
		printf("  %s step %d: %zu/%zu bit-exact, max rel diff %.2e\n", name, k + 1,
		       exact, n, worst);
		assert_true(worst < 1e-6);
	}
	optim_state_free(&st);
	free(p0);
	free(grads);
	free(traj);
	free(lrs);
}

static void test_adamw_matches_torch(void **state)
{
	(void)state;
	check_trajectory("adamw", OPTIM_ADAMW, 0.05);
}

static void test_sgd_matches_torch(void **state)
{
	(void)state;
	check_trajectory("sgd", OPTIM_SGD, 1e-4);
}

static void test_schedule(void **state)
{
	struct lr_schedule s = { .peak = 1e-3, .min_lr = 0, .warmup = 10, .total = 110 };
	(void)state;
	assert_true(fabs(lr_at(&s, 0) - 1e-4) < 1e-15);
	assert_true(fabs(lr_at(&s, 9) - 1e-3) < 1e-15);
	assert_true(fabs(lr_at(&s, 10) - 1e-3) < 1e-15);
	assert_true(fabs(lr_at(&s, 60) - 5e-4) < 1e-12);
	assert_true(fabs(lr_at(&s, 110)) < 1e-15);
	assert_true(fabs(lr_at(&s, 500)) < 1e-15);
	struct lr_schedule flat = { .peak = 2e-3, .warmup = 0, .total = 0 };
	assert_true(lr_at(&flat, 7) == 2e-3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_adamw_matches_torch),
		cmocka_unit_test(test_sgd_matches_torch),
		cmocka_unit_test(test_schedule),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
