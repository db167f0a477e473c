/*
 * swin_model_load on bad checkpoints, and swin_model_save round trips.
 *
 * The fixtures (tests/convert/fixtures/, written by make_bad_checkpoints.py)
 * are one tiny good checkpoint (img 8, patch 2, embed 8, depths [2, 1],
 * heads [1, 2], window 2, mlp 2, 3 classes) and copies of it with one thing
 * broken each.  Every bad file must fail with the right status and a single
 * line that names the file, the tensor or key at fault, and what was found
 * and expected.  Truncated files are cut from good.h5 here, at many lengths.
 * The good file must load with exactly the tensors HDF5 holds, and
 * save -> load must give back the same config and bit-identical parameters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "model/swin_model.h"
#include "tests/common/test_util.h"

#define MAX_NEEDLES 3

struct bad_case {
	const char *file;          /* under tests/convert/fixtures/ */
	enum qcal_status status;
	const char *needles[MAX_NEEDLES]; /* substrings the message must hold */
};

static const struct bad_case bad_cases[] = {
	{ "missing_tensor.h5", QCAL_ENOENT,
	  { "missing tensor features.1.1.attn.proj.weight", "expected shape (8, 8)" } },
	{ "wrong_shape.h5", QCAL_EFORMAT,
	  { "features.3.0.mlp.0.weight has shape (16, 32)", "expected (32, 16)" } },
	{ "dtype_float64.h5", QCAL_EFORMAT,
	  { "features.1.0.norm1.weight has dtype float64", "expected float32" } },
	{ "dtype_int.h5", QCAL_EFORMAT,
	  { "head.bias has dtype int64", "expected float32" } },
	{ "extra_tensor.h5", QCAL_EFORMAT,
	  { "unexpected tensor features.1.0.attn.logit_scale",
	    "not part of this config's Swin model" } },
	{ "config_heads_not_dividing.h5", QCAL_EFORMAT,
	  { "config: num_heads[0] = 3", "does not divide the stage's 8 channels" } },
	{ "config_embed_mismatch.h5", QCAL_EFORMAT,
	  { "features.0.0.weight has shape (8, 3, 2, 2)", "expected (16, 3, 2, 2)" } },
	{ "config_heads_mismatch.h5", QCAL_EFORMAT,
	  { "features.1.0.attn.relative_position_bias_table has shape (9, 1)",
	    "expected (9, 2)" } },
	{ "config_missing.h5", QCAL_EFORMAT,
	  { "no string attribute \"config\" at the root" } },
	{ "config_not_json.h5", QCAL_EFORMAT,
	  { "config: invalid JSON at line 1", "expected near 'img'" } },
	{ "config_unknown_key.h5", QCAL_EFORMAT,
	  { "config: unknown key \"drop_path_rate\"", "expected only name, img_size" } },
	{ "config_depths_overflow.h5", QCAL_EFORMAT,
	  { "config: \"depths\"[1] = 4294967298 is out of range" } },
	{ "relpos_index_bad.h5", QCAL_EFORMAT,
	  { "features.1.0.attn.relative_position_index[5] = 7", "expected 4" } },
	{ "relpos_index_short.h5", QCAL_EFORMAT,
	  { "features.3.0.attn.relative_position_index has 9 entries", "expected 16" } },
	{ "input_folded_bad.h5", QCAL_EFORMAT,
	  { "attribute input_folded = \"yes\"", "expected \"true\" or \"false\"" } },
	{ "input_folded_not_string.h5", QCAL_EFORMAT,
	  { "attribute input_folded = (not a string)", "expected \"true\" or \"false\"" } },
	{ "nan_weight.h5", QCAL_EFORMAT,
	  { "features.1.0.mlp.0.weight has 2 non-finite values", "first: NaN at [3, 5]" } },
	{ "inf_bias.h5", QCAL_EFORMAT,
	  { "head.bias has 1 non-finite value", "first: Inf at [2]" } },
	{ "not_hdf5.h5", QCAL_EFORMAT,
	  { "not an HDF5 file", "expected a checkpoint written by tools/convert_checkpoint.py" } },
	{ "no_such_file.h5", QCAL_ENOENT, { "cannot open checkpoint" } },
};

static const char *fixture(char *buf, size_t size, const char *name)
{
	char rel[256];

	snprintf(rel, sizeof(rel), "tests/convert/fixtures/%s", name);
	return test_source_path(buf, size, rel);
}

/*
 * True if msg is one line that starts with "<path>: " and holds every
 * needle; otherwise prints why.
 */
static bool message_ok(const char *msg, const char *path,
		       const char *const *needles, int n)
{
	size_t plen = strlen(path);

	if (strchr(msg, '\n')) {
		printf("  not one line: %s\n", msg);
		return false;
	}
	if (strncmp(msg, path, plen) != 0 || strncmp(msg + plen, ": ", 2) != 0) {
		printf("  does not start with \"%s: \": %s\n", path, msg);
		return false;
	}
	for (int i = 0; i < n && needles[i]; i++)
		if (!strstr(msg, needles[i])) {
			printf("  lacks \"%s\": %s\n", needles[i], msg);
			return false;
		}
	return true;
}

static void test_bad_checkpoints(void **state)
{
	int failures = 0;
	(void)state;

	for (size_t c = 0; c < sizeof(bad_cases) / sizeof(bad_cases[0]); c++) {
		const struct bad_case *bc = &bad_cases[c];
		char path[512];
		struct swin_model m;
		struct qcal_err err;
		enum qcal_status st;

		fixture(path, sizeof(path), bc->file);
		qcal_err_clear(&err);
		st = swin_model_load(&m, path, &err);
		printf("%-30s %s\n", bc->file, err.msg);
		if (st != bc->status || err.status != bc->status) {
			printf("  status %s, expected %s\n", qcal_status_name(st),
			       qcal_status_name(bc->status));
			failures++;
		}
		if (!message_ok(err.msg, path, bc->needles, MAX_NEEDLES))
			failures++;
		/* A failed load leaves nothing to free; freeing is still safe. */
		assert_null(m.params);
		assert_null(m.table.specs);
		swin_model_free(&m);
	}
	assert_int_equal(failures, 0);
}

/* The matcher itself must reject a wrong needle, a wrong path and two lines. */
static void test_message_checker_fails(void **state)
{
	const char *needle[] = { "has shape (16, 32)" };
	const char *wrong[] = { "has shape (32, 16)" };
	(void)state;

	assert_true(message_ok("a.h5: x has shape (16, 32)", "a.h5", needle, 1));
	assert_false(message_ok("a.h5: x has shape (16, 32)", "a.h5", wrong, 1));
	assert_false(message_ok("b.h5: x has shape (16, 32)", "a.h5", needle, 1));
	assert_false(message_ok("a.h5: x\nhas shape (16, 32)", "a.h5", needle, 1));
}

static void read_whole(const char *path, unsigned char **data, size_t *size)
{
	FILE *f = fopen(path, "rb");
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n > 0);
	rewind(f);
	*data = malloc((size_t)n);
	assert_non_null(*data);
	assert_int_equal(fread(*data, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*size = (size_t)n;
}

static void test_truncated(void **state)
{
	char good[512], dir[512], path[600];
	unsigned char *data;
	size_t size, lengths[400];
	int nlen = 0, failures = 0, eof_reported = 0;
	(void)state;

	read_whole(fixture(good, sizeof(good), "good.h5"), &data, &size);
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	const size_t fixed[] = { 0, 1, 7, 8, 9, 40, 96, 100, 136, 512, 800, 1024,
				 2048, size / 4, size / 2, 3 * size / 4, size - 4096,
				 size - 512, size - 8, size - 1 };
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		lengths[nlen++] = fixed[i];
	for (size_t len = 211; len < size && nlen < 400; len += 211)
		lengths[nlen++] = len;
	snprintf(path, sizeof(path), "%s/cut.h5", dir);
	for (int i = 0; i < nlen; i++) {
		struct swin_model m;
		struct qcal_err err;
		char eof[64], stored[64];
		const char *needles[] = { NULL };
		FILE *f = fopen(path, "wb");

		assert_non_null(f);
		assert_int_equal(fwrite(data, 1, lengths[i], f), lengths[i]);
		fclose(f);
		qcal_err_clear(&err);
		if (swin_model_load(&m, path, &err) == QCAL_OK) {
			printf("  cut at %zu of %zu bytes: loaded\n", lengths[i], size);
			swin_model_free(&m);
			failures++;
			continue;
		}
		if (!message_ok(err.msg, path, needles, 0))
			failures++;
		/* Past the superblock, HDF5 states the sizes: found vs expected. */
		snprintf(eof, sizeof(eof), "eof = %zu,", lengths[i]);
		snprintf(stored, sizeof(stored), "stored_eof = %zu", size);
		if (strstr(err.msg, "truncated file") && strstr(err.msg, eof) &&
		    strstr(err.msg, stored))
			eof_reported++;
		else if (lengths[i] >= 512) {
			printf("  cut at %zu: no eof/stored_eof: %s\n", lengths[i], err.msg);
			failures++;
		}
		if (i < 12 || lengths[i] == size - 1)
			printf("cut at %5zu: %s\n", lengths[i], err.msg);
	}
	printf("%d cuts of %zu bytes rejected, %d with HDF5's eof vs stored_eof\n",
	       nlen, size, eof_reported);
	test_rmtree(dir);
	free(data);
	assert_int_equal(failures, 0);
	assert_true(eof_reported >= nlen - 12);
}

static void test_good_loads_exactly(void **state)
{
	char path[512];
	struct swin_model m;
	struct qcal_err err;
	static const char *const classes[] = { "ant", "bee", "cat" };
	(void)state;

	fixture(path, sizeof(path), "good.h5");
	if (swin_model_load(&m, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	const struct swin_config *c = &m.cfg;
	assert_string_equal(c->name, "tiny-bad-fixtures");
	assert_int_equal(c->img_size, 8);
	assert_int_equal(c->patch_size, 2);
	assert_int_equal(c->in_chans, 3);
	assert_int_equal(c->embed_dim, 8);
	assert_int_equal(c->num_stages, 2);
	assert_int_equal(c->depths[0], 2);
	assert_int_equal(c->depths[1], 1);
	assert_int_equal(c->num_heads[0], 1);
	assert_int_equal(c->num_heads[1], 2);
	assert_int_equal(c->window_size, 2);
	assert_true(c->mlp_ratio == 2.0);
	assert_int_equal(c->num_classes, 3);
	assert_true(c->mean[0] == 0.5f && c->mean[1] == 0.25f && c->mean[2] == 0.125f);
	assert_true(c->std[0] == 0.25f && c->std[1] == 0.5f && c->std[2] == 2.0f);
	assert_int_equal(c->num_class_names, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(c->class_names[i], classes[i]);
	assert_int_equal(m.input_folded, 0);
	assert_int_equal(m.table.count, 50);
	assert_int_equal(m.table.numel, 4239);

	/* Every parameter holds exactly its own dataset (none swapped, none
	 * left zero): compare with HDF5's own reading of the file. */
	hid_t f = qcal_h5_open_read(path, &err);
	assert_true(f >= 0);
	size_t nonzero = 0;
	for (int i = 0; i < m.table.count; i++) {
		const struct swin_param_spec *s = &m.table.specs[i];
		float *ref;
		struct qcal_h5_shape shape;
		assert_int_equal(qcal_h5_read_float(f, path, s->name, &ref, &shape, &err),
				 QCAL_OK);
		assert_int_equal(qcal_h5_shape_numel(&shape), s->numel);
		assert_memory_equal(m.params + s->offset, ref, s->numel * sizeof(float));
		for (size_t j = 0; j < s->numel; j++)
			nonzero += ref[j] != 0.0f;
		free(ref);
	}
	H5Fclose(f);
	assert_int_equal(nonzero, m.table.numel); /* random, so a lost tensor shows */
	swin_model_free(&m);
}

static void assert_same_model(const struct swin_model *a, const struct swin_model *b)
{
	const struct swin_config *x = &a->cfg, *y = &b->cfg;

	assert_string_equal(x->name, y->name);
	assert_int_equal(x->img_size, y->img_size);
	assert_int_equal(x->patch_size, y->patch_size);
	assert_int_equal(x->in_chans, y->in_chans);
	assert_int_equal(x->embed_dim, y->embed_dim);
	assert_int_equal(x->num_stages, y->num_stages);
	assert_memory_equal(x->depths, y->depths, sizeof(x->depths));
	assert_memory_equal(x->num_heads, y->num_heads, sizeof(x->num_heads));
	assert_int_equal(x->window_size, y->window_size);
	assert_memory_equal(&x->mlp_ratio, &y->mlp_ratio, sizeof(x->mlp_ratio));
	assert_int_equal(x->num_classes, y->num_classes);
	assert_memory_equal(x->mean, y->mean, sizeof(x->mean));
	assert_memory_equal(x->std, y->std, sizeof(x->std));
	assert_int_equal(x->num_class_names, y->num_class_names);
	for (int i = 0; i < x->num_class_names; i++)
		assert_string_equal(x->class_names[i], y->class_names[i]);
	assert_int_equal(a->input_folded, b->input_folded);
	assert_int_equal(a->table.count, b->table.count);
	assert_int_equal(a->table.numel, b->table.numel);
	assert_memory_equal(a->params, b->params, a->table.numel * sizeof(float));
}

static void test_save_load_round_trip(void **state)
{
	char path[512], dir[512], out[600];
	struct swin_model m, back, folded;
	struct qcal_err err;
	(void)state;

	fixture(path, sizeof(path), "good.h5");
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	snprintf(out, sizeof(out), "%s/saved.h5", dir);
	if (swin_model_load(&m, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);

	assert_int_equal(swin_model_save(&m, out, &err), QCAL_OK);
	if (swin_model_load(&back, out, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	assert_same_model(&m, &back);
	swin_model_free(&back);

	/* A folded model keeps input_folded = "true" and its folded weights. */
	assert_int_equal(swin_model_clone(&folded, &m, &err), QCAL_OK);
	swin_model_fold_input_norm(&folded);
	assert_memory_not_equal(folded.w.patch_w, m.w.patch_w,
				(size_t)folded.cfg.embed_dim * sizeof(float));
	assert_int_equal(swin_model_save(&folded, out, &err), QCAL_OK);
	if (swin_model_load(&back, out, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(back.input_folded, 1);
	assert_same_model(&folded, &back);
	swin_model_free(&back);
	swin_model_free(&folded);

	/* Saving into a missing directory fails, naming the path. */
	snprintf(out, sizeof(out), "%s/no/such/dir/saved.h5", dir);
	assert_int_not_equal(swin_model_save(&m, out, &err), QCAL_OK);
	assert_non_null(strstr(err.msg, out));
	swin_model_free(&m);
	test_rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_message_checker_fails),
		cmocka_unit_test(test_bad_checkpoints),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_good_loads_exactly),
		cmocka_unit_test(test_save_load_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
