#include "tests/common/test_util.h"

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

const char *test_shared_path(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", env_or("QCAL_SHARED", "../shared"), rel);
	return buf;
}

const char *test_source_path(char *buf, size_t size, const char *rel)
{
	snprintf(buf, size, "%s/%s", env_or("QCAL_SOURCE", "."), rel);
	return buf;
}

const char *test_tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "%s/qcal-test-XXXXXX", env_or("TMPDIR", "/tmp"));
	return mkdtemp(buf);
}

static int rm_entry(const char *path, const struct stat *sb, int flag,
		    struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void test_rmtree(const char *dir)
{
	if (dir)
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

struct test_diff test_compare(const float *got, const float *ref, size_t n)
{
	struct test_diff d = { 0, 0, 0 };

	for (size_t i = 0; i < n; i++) {
		double diff = fabs((double)got[i] - (double)ref[i]);
		if (!(diff <= d.max_abs_diff)) { /* also catches NaN */
			d.max_abs_diff = isnan(diff) ? INFINITY : diff;
			d.worst_index = i;
		}
		if (fabs(ref[i]) > d.max_abs_ref)
			d.max_abs_ref = fabs(ref[i]);
	}
	return d;
}

int test_report_diff(const char *label, const float *got, const float *ref,
		     size_t n, double rel_tol)
{
	struct test_diff d = test_compare(got, ref, n);
	double ratio = d.max_abs_ref > 0 ? d.max_abs_diff / d.max_abs_ref : d.max_abs_diff;
	int bad = !(d.max_abs_diff <= rel_tol * d.max_abs_ref);

	printf("  %-28s max|diff| = %.3e  max|ref| = %.3e  ratio = %.2e  %s\n",
	       label, d.max_abs_diff, d.max_abs_ref, ratio, bad ? "FAIL" : "OK");
	fflush(stdout);
	return bad;
}
