/*
 * Quantization configs: the shipped configs resolve as documented on the
 * micro model's point table, and bad configs fail with file:line and key.
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

#include "calib/qconfig.h"
#include "model/qpoint.h"
#include "model/swin_model.h"
#include "tests/common/test_util.h"

struct env {
	struct swin_model model;
	struct qp_table table;
	struct qconfig_spec *specs;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char path[512];
	struct qcal_err err;

	test_source_path(path, sizeof(path), "models/swin-micro-cifar10.h5");
	if (swin_model_load(&e->model, path, &err) != QCAL_OK ||
	    qp_table_init(&e->table, &e->model.cfg, &e->model.table, &err) != QCAL_OK) {
		fprintf(stderr, "%s\n", err.msg);
		return -1;
	}
	e->specs = calloc((size_t)e->table.count, sizeof(*e->specs));
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	free(e->specs);
	qp_table_free(&e->table);
	swin_model_free(&e->model);
	free(e);
	return 0;
}

static const struct qconfig_spec *spec_of(struct env *e, const char *name)
{
	int i = qp_table_find(&e->table, name);
	assert_true(i >= 0);
	return &e->specs[i];
}

static void load_shipped(struct env *e, const char *name, struct qconfig *cfg)
{
	char path[512], rel[128];
	struct qcal_err err;

	snprintf(rel, sizeof(rel), "configs/%s.yaml", name);
	test_source_path(path, sizeof(path), rel);
	if (qconfig_load(cfg, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	if (qconfig_resolve(cfg, &e->table, e->specs, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
}

static void test_j5_resolution(void **state)
{
	struct env *e = *state;
	struct qconfig cfg;
	const struct qconfig_spec *s;

	load_shipped(e, "j5", &cfg);
	assert_string_equal(cfg.name, "j5");
	assert_true(cfg.fold_input);
	s = spec_of(e, "input");
	assert_true(s->quantize && s->fixed && s->dtype == QCAL_DTYPE_INT8);
	assert_true(s->scale == 1.0 / 128 && s->zero_point == 0 && !s->learnable);
	assert_int_equal(spec_of(e, "features.1.0.norm1.mean")->dtype, QCAL_DTYPE_INT16);
	assert_int_equal(spec_of(e, "features.1.0.norm1.rstd")->dtype, QCAL_DTYPE_INT16);
	assert_int_equal(spec_of(e, "features.1.0.norm1.out")->dtype, QCAL_DTYPE_INT8);
	assert_int_equal(spec_of(e, "features.1.1.attn.softmax.exp")->dtype, QCAL_DTYPE_INT16);
	assert_int_equal(spec_of(e, "features.1.1.attn.softmax.recip")->dtype, QCAL_DTYPE_INT16);
	assert_int_equal(spec_of(e, "features.1.0.attn.qk")->dtype, QCAL_DTYPE_INT8);
	s = spec_of(e, "features.1.0.attn.relative_position_bias");
	assert_true(s->quantize && !s->fixed);
	assert_string_equal(s->observer, "minmax");
	assert_int_equal(spec_of(e, "head.out")->dtype, QCAL_DTYPE_INT32);
	s = spec_of(e, "features.1.0.attn.qkv.weight");
	assert_int_equal(s->dtype, QCAL_DTYPE_INT8);
	assert_string_equal(s->observer, "per_channel_minmax");
	qconfig_free(&cfg);
}

static void test_int8_default_resolution(void **state)
{
	struct env *e = *state;
	struct qconfig cfg;

	load_shipped(e, "int8-default", &cfg);
	assert_false(cfg.fold_input);
	for (int i = 0; i < e->table.count; i++) {
		assert_true(e->specs[i].quantize);
		assert_int_equal(e->specs[i].dtype, QCAL_DTYPE_INT8);
		assert_false(e->specs[i].fixed);
	}
	qconfig_free(&cfg);
}

static void test_w4a8_weights(void **state)
{
	struct env *e = *state;
	struct qconfig cfg;

	load_shipped(e, "w4a8", &cfg);
	assert_int_equal(spec_of(e, "head.weight")->dtype, QCAL_DTYPE_INT4);
	assert_int_equal(spec_of(e, "features.3.1.mlp.0.weight")->dtype, QCAL_DTYPE_INT4);
	assert_int_equal(spec_of(e, "features.3.1.mlp.0.out")->dtype, QCAL_DTYPE_INT8);
	qconfig_free(&cfg);
}

/* A broad rule followed by a narrower one: the later one wins on its fields. */
static void test_rule_order(void **state)
{
	struct env *e = *state;
	struct qconfig cfg;
	struct qcal_err err;
	const char *text =
		"version: 1\n"
		"rules:\n"
		"  - match: {name: 'features.1.*'}\n"
		"    dtype: int16\n"
		"    observer: entropy\n"
		"  - match: {name: 'features.1.0.*', kind: [gelu, 'softmax.*']}\n"
		"    dtype: uint8\n"
		"  - match: {role: weight}\n"
		"    quantize: false\n";

	assert_int_equal(qconfig_parse(&cfg, "inline.yaml", text, strlen(text), &err), QCAL_OK);
	assert_int_equal(qconfig_resolve(&cfg, &e->table, e->specs, &err), QCAL_OK);
	assert_int_equal(spec_of(e, "features.1.0.mlp.1.out")->dtype, QCAL_DTYPE_UINT8);
	assert_string_equal(spec_of(e, "features.1.0.mlp.1.out")->observer, "entropy");
	assert_int_equal(spec_of(e, "features.1.0.mlp.0.out")->dtype, QCAL_DTYPE_INT16);
	assert_int_equal(spec_of(e, "features.1.1.mlp.1.out")->dtype, QCAL_DTYPE_INT16);
	assert_int_equal(spec_of(e, "features.3.0.mlp.1.out")->dtype, QCAL_DTYPE_INT8);
	assert_false(spec_of(e, "head.weight")->quantize);
	qconfig_free(&cfg);
}

static void expect_error(struct env *e, const char *text, const char *needle1,
			 const char *needle2)
{
	struct qconfig cfg;
	struct qcal_err err = { 0 };
	enum qcal_status st = qconfig_parse(&cfg, "bad.yaml", text, strlen(text), &err);

	if (st == QCAL_OK) {
		st = qconfig_resolve(&cfg, &e->table, e->specs, &err);
		qconfig_free(&cfg);
	}
	printf("  %s\n", err.msg);
	assert_int_not_equal(st, QCAL_OK);
	assert_non_null(strstr(err.msg, needle1));
	assert_non_null(strstr(err.msg, needle2));
}

static void test_bad_configs(void **state)
{
	struct env *e = *state;

	expect_error(e, "version: 1\nrules:\n  - match: {kind: gelu}\n    dtpye: int16\n",
		     "bad.yaml:4:", "unknown key 'dtpye'");
	expect_error(e, "version: 1\nfoo: 3\n", "bad.yaml:2:", "unknown key 'foo'");
	expect_error(e, "rules: []\n", "bad.yaml:1:", "missing 'version: 1'");
	expect_error(e, "version: 2\n", "bad.yaml:1:", "unsupported version '2'");
	expect_error(e, "version: 1\nrules:\n  - match: {kind: gelu}\n    dtype: int12\n",
		     "bad.yaml:4:", "unknown dtype 'int12'");
	expect_error(e, "version: 1\nrules:\n  - match: {kind: softmx.exp}\n    dtype: int16\n",
		     "bad.yaml:3:", "matches no point kind");
	expect_error(e, "version: 1\nrules:\n  - match: {name: 'nope.*'}\n    dtype: int16\n",
		     "bad.yaml:3:", "matches no quantization point");
	expect_error(e, "version: 1\nrules:\n  - match: {kind: input}\n    scale: -1\n",
		     "bad.yaml:4:", "finite and positive");
	expect_error(e, "version: 1\nrules:\n  - match: {kind: input}\n    scale: 1/0\n",
		     "bad.yaml:4:", "not a number");
	expect_error(e, "version: 1\nrules:\n  - dtype: int16\n", "bad.yaml:3:", "no 'match'");
	expect_error(e, "version: 1\nrules:\n  - match: {kind: gelu}\n    observer: kl\n",
		     "bad.yaml:4:", "unknown observer 'kl'");
	expect_error(e, "version: 1\nrules: [\n", "bad.yaml:", "YAML error");
	expect_error(e, "version: 1\nrules:\n  - match: {kind: weight}\n    scale: 0.1\n",
		     "bad.yaml", "cannot take a fixed scale");
}

/* Writing a config (with promotions) and reading it back resolves the same. */
static void test_write_round_trip(void **state)
{
	struct env *e = *state;
	struct qconfig cfg, back;
	struct qcal_err err;
	char dir[256], path[512];
	const char *kinds[] = { "gelu", "linear" };

	load_shipped(e, "j5", &cfg);
	struct qconfig_spec *before = calloc((size_t)e->table.count, sizeof(*before));
	memcpy(before, e->specs, (size_t)e->table.count * sizeof(*before));
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	snprintf(path, sizeof(path), "%s/promoted.yaml", dir);
	assert_int_equal(qconfig_write_with_promotions(&cfg, path, "j5-promoted", NULL, kinds, 2,
						       QCAL_DTYPE_INT16, &err), QCAL_OK);
	if (qconfig_load(&back, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	assert_string_equal(back.name, "j5-promoted");
	assert_true(back.fold_input);
	assert_int_equal(qconfig_resolve(&back, &e->table, e->specs, &err), QCAL_OK);
	for (int i = 0; i < e->table.count; i++) {
		enum qp_kind k = e->table.points[i].kind;
		if (k == QP_KIND_GELU || k == QP_KIND_LINEAR) {
			assert_int_equal(e->specs[i].dtype, QCAL_DTYPE_INT16);
			continue;
		}
		assert_int_equal(e->specs[i].quantize, before[i].quantize);
		assert_int_equal(e->specs[i].dtype, before[i].dtype);
		assert_int_equal(e->specs[i].fixed, before[i].fixed);
		assert_true(e->specs[i].scale == before[i].scale);
		assert_string_equal(e->specs[i].observer, before[i].observer);
	}
	free(before);
	qconfig_free(&back);
	qconfig_free(&cfg);
	test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_j5_resolution),
		cmocka_unit_test(test_int8_default_resolution),
		cmocka_unit_test(test_w4a8_weights),
		cmocka_unit_test(test_rule_order),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_write_round_trip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
