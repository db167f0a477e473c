/*
 * Helpers shared by the C tests: where fixtures live and how tensors are
 * compared.  Tests locate ../shared through $QCAL_SHARED and the source tree
 * through $QCAL_SOURCE (meson sets both).
 */
#ifndef QCAL_TESTS_TEST_UTIL_H
#define QCAL_TESTS_TEST_UTIL_H

#include <stddef.h>

/* "$QCAL_SHARED/<rel>" in a static-free caller buffer. */
const char *test_shared_path(char *buf, size_t size, const char *rel);
const char *test_source_path(char *buf, size_t size, const char *rel);
/* A fresh empty directory under $TMPDIR (caller removes with test_rmtree). */
const char *test_tmpdir(char *buf, size_t size);
void test_rmtree(const char *dir);

struct test_diff {
	double max_abs_diff;
	double max_abs_ref;
	size_t worst_index;
};

struct test_diff test_compare(const float *got, const float *ref, size_t n);

/*
 * Print "  <label>: max|diff| = .. (max|ref| = .., ratio ..) OK/FAIL" and
 * return nonzero if max|diff| > rel_tol * max|ref|.
 */
int test_report_diff(const char *label, const float *got, const float *ref,
		     size_t n, double rel_tol);

#endif
