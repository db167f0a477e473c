/* Fixture access for the datasets tests; see ds_fixture.h. */
#include "tests/datasets/ds_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "tests/common/test_util.h"

const char *ds_fixture_path(char *buf, size_t size, const char *rel)
{
	char sub[1024];

	snprintf(sub, sizeof(sub), "tests/datasets/fixtures/%s", rel);
	return test_source_path(buf, size, sub);
}

float *ds_expected(const char *name, int64_t dims[4])
{
	char path[1024];
	struct qcal_h5_shape shape;
	struct qcal_err err;
	float *data = NULL;
	hid_t f;

	ds_fixture_path(path, sizeof(path), "expected.h5");
	f = qcal_h5_open_read(path, &err);
	if (f < 0)
		fail_msg("%s", err.msg);
	if (qcal_h5_read_float(f, path, name, &data, &shape, &err) != QCAL_OK) {
		H5Fclose(f);
		fail_msg("%s", err.msg);
	}
	H5Fclose(f);
	for (int i = 0; i < 4; i++)
		dims[i] = i < shape.ndim ? shape.dims[i] : 0;
	return data;
}

int ds_max_diff_u8(const uint8_t *a, const uint8_t *b, size_t n, size_t *worst)
{
	int best = 0;

	if (worst)
		*worst = 0;
	for (size_t i = 0; i < n; i++) {
		int d = abs((int)a[i] - (int)b[i]);
		if (d > best) {
			best = d;
			if (worst)
				*worst = i;
		}
	}
	return best;
}

size_t ds_count_bit_diffs(const float *a, const float *b, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += memcmp(&a[i], &b[i], sizeof(float)) != 0;
	return bad;
}
