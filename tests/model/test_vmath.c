/*
 * Accuracy of the vectorisable exp and erf (model/vmath.h) against libm on
 * dense grids, with the bounds the header promises.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>

#include "model/vmath.h"

static double ulp_of(double v)
{
	float f = (float)fabs(v);
	return (double)nextafterf(f, INFINITY) - (double)f;
}

static void test_expf_ulp(void **state)
{
	double worst = 0, at = 0;
	(void)state;
	for (int i = 0; i <= 4000000; i++) {
		float x = -87.0f + 175.0f * (float)i / 4000000.0f;
		double ref = exp((double)x);
		double err = fabs((double)vm_expf(x) - ref) / ulp_of(ref);
		if (err > worst) {
			worst = err;
			at = x;
		}
	}
	printf("  vm_expf: max error %.3f ulp at x = %.6g\n", worst, at);
	assert_true(worst <= 1.0);
	assert_true(vm_expf(-88.0f) == 0.0f);
	assert_true(vm_expf(-INFINITY) == 0.0f);
	assert_true(isinf(vm_expf(89.0f)));
	assert_true(vm_expf(0.0f) == 1.0f);
	/* NaN propagates (and, under UBSan, converts nothing undefined) */
	assert_true(isnan(vm_expf(NAN)));
	assert_true(vm_expf(INFINITY) == INFINITY);
}

static void test_erff_abs(void **state)
{
	double worst = 0, at = 0;
	(void)state;
	for (int i = 0; i <= 4000000; i++) {
		float x = -7.0f + 14.0f * (float)i / 4000000.0f;
		double err = fabs((double)vm_erff(x) - erf((double)x));
		if (err > worst) {
			worst = err;
			at = x;
		}
	}
	printf("  vm_erff: max abs error %.3e at x = %.6g\n", worst, at);
	assert_true(worst <= 2e-7);
	assert_true(vm_erff(0.0f) == 0.0f);
	assert_true(vm_erff(10.0f) == 1.0f && vm_erff(-10.0f) == -1.0f);
	assert_true(signbit(vm_erff(-1e-30f)));
	assert_true(isnan(vm_erff(NAN)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expf_ulp),
		cmocka_unit_test(test_erff_abs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
