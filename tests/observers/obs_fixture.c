/* Observer test helpers; see obs_fixture.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "tests/common/test_util.h"
#include "tests/observers/obs_fixture.h"

const char *const obs_case_names[OBS_NUM_CASES] = {
	"normal", "heavy", "softmax", "outliers", "gelu", "small", "shifted",
};

const struct obs_config obs_configs[OBS_NUM_CONFIGS] = {
	{ "qint8_sym", QCAL_DTYPE_INT8, true },
	{ "qint8_aff", QCAL_DTYPE_INT8, false },
	{ "quint8_sym", QCAL_DTYPE_UINT8, true },
	{ "quint8_aff", QCAL_DTYPE_UINT8, false },
	{ "int16_sym", QCAL_DTYPE_INT16, true },
	{ "int16_aff", QCAL_DTYPE_INT16, false },
	{ "uint16_aff", QCAL_DTYPE_UINT16, false },
	{ "int4_sym", QCAL_DTYPE_INT4, true },
	{ "uint4_aff", QCAL_DTYPE_UINT4, false },
	{ "int32_sym", QCAL_DTYPE_INT32, true },
};

hid_t obs_fixture_open(void)
{
	char path[1024], expect[512] = "";
	struct qcal_err err;
	char *configs;
	hid_t f;

	test_source_path(path, sizeof(path), "tests/observers/fixtures/observers.h5");
	f = qcal_h5_open_read(path, &err);
	if (f < 0)
		fail_msg("%s", err.msg);
	configs = qcal_h5_read_string_attr(f, "configs");
	for (int i = 0; i < OBS_NUM_CONFIGS; i++) {
		strcat(expect, i ? "," : "");
		strcat(expect, obs_configs[i].name);
	}
	if (!configs || strcmp(configs, expect))
		fail_msg("%s: configs '%s', expected '%s' (regenerate the fixture?)",
			 path, configs ? configs : "(none)", expect);
	free(configs);
	return f;
}

float *obs_read_float(hid_t f, const char *path, size_t *n)
{
	struct qcal_h5_shape shape;
	struct qcal_err err;
	float *data;

	if (qcal_h5_read_float(f, "observers.h5", path, &data, &shape, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	if (n)
		*n = qcal_h5_shape_numel(&shape);
	return data;
}

int64_t *obs_read_int64(hid_t f, const char *path, size_t *n)
{
	struct qcal_h5_shape shape;
	struct qcal_err err;
	int64_t *data;

	if (qcal_h5_read_int64(f, "observers.h5", path, &data, &shape, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	if (n)
		*n = qcal_h5_shape_numel(&shape);
	return data;
}

double *obs_read_double(hid_t f, const char *path, size_t *n)
{
	hid_t ds = H5Dopen2(f, path, H5P_DEFAULT), space;
	hssize_t count;
	double *data;

	if (ds < 0)
		fail_msg("observers.h5: no dataset %s", path);
	space = H5Dget_space(ds);
	count = H5Sget_simple_extent_npoints(space);
	data = malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
	assert_non_null(data);
	assert_true(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
	H5Sclose(space);
	H5Dclose(ds);
	if (n)
		*n = (size_t)count;
	return data;
}

void obs_case_load(hid_t f, const char *name, struct obs_case *c)
{
	char path[256];

	memset(c, 0, sizeof(*c));
	c->name = name;
	for (int k = 0; k < OBS_MAX_BATCHES; k++) {
		snprintf(path, sizeof(path), "cases/%s/batches/%d", name, k);
		if (H5Lexists(f, path, H5P_DEFAULT) <= 0)
			break;
		c->x[k] = obs_read_float(f, path, &c->n[k]);
		c->total += c->n[k];
		c->batches++;
	}
	assert_true(c->batches > 0);
	c->all = malloc(c->total * sizeof(float));
	assert_non_null(c->all);
	for (int k = 0, off = 0; k < c->batches; off += (int)c->n[k], k++)
		memcpy(c->all + off, c->x[k], c->n[k] * sizeof(float));
}

void obs_case_free(struct obs_case *c)
{
	for (int k = 0; k < c->batches; k++)
		free(c->x[k]);
	free(c->all);
}

struct observer *obs_make(const struct observer_options *opt)
{
	struct observer *o;
	struct qcal_err err;

	if (observer_create(&o, opt, &err) != QCAL_OK)
		fail_msg("observer_create: %s", err.msg);
	return o;
}

struct observer *obs_make_kind(enum observer_kind kind, enum qcal_dtype dtype,
			       bool symmetric)
{
	struct observer_options opt;

	observer_options_init(&opt, kind, dtype, symmetric);
	return obs_make(&opt);
}

void obs_feed(struct observer *o, const struct obs_case *c)
{
	struct qcal_err err;

	for (int k = 0; k < c->batches; k++)
		if (observer_update(o, c->x[k], c->n[k], &err) != QCAL_OK)
			fail_msg("observer_update: %s", err.msg);
}

void obs_qparams(const struct observer *o, struct observer_qparams *q)
{
	struct qcal_err err;

	if (observer_compute_qparams(o, q, &err) != QCAL_OK)
		fail_msg("observer_compute_qparams: %s", err.msg);
}

bool obs_same_float(float a, float b)
{
	return memcmp(&a, &b, sizeof(float)) == 0;
}
