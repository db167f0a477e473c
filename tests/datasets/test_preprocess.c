/*
 * Preprocessing against Pillow and torchvision: resize + centre crop on a
 * natural 181x127 image (and its transpose) for bilinear and bicubic, up
 * and down, must be within 1 LSB of PIL's output (we expect and report 0);
 * the whole eval transform must give torchvision's float tensor bit for bit;
 * the normalisation table must equal ToTensor + Normalize for every pixel
 * value.  The windowed resize is checked against resizing everything and
 * cropping, and the float comparison is shown to catch a one-ulp change.
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

#include "core/rng.h"
#include "datasets/image.h"
#include "datasets/preprocess.h"
#include "tests/datasets/ds_fixture.h"

static const float cifar_mean[3] = { 0.49140000343322754f, 0.4821999967098236f,
				     0.4465000033378601f };
static const float cifar_std[3] = { 0.24699999392032623f, 0.2434999942779541f,
				    0.26159998774528503f };
static const float imagenet_mean[3] = { 0.485f, 0.456f, 0.406f };
static const float imagenet_std[3] = { 0.229f, 0.224f, 0.225f };

static void load(struct image_u8 *img, const char *rel)
{
	char path[1024];
	struct qcal_err err;

	ds_fixture_path(path, sizeof(path), rel);
	if (image_decode_file(img, path, NULL, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
}

struct resize_case {
	const char *name, *src;
	enum preprocess_interp interp;
	int resize_size, crop;
};

/* The cases make_fixtures.py rendered with torchvision (RESIZE_CASES). */
static const struct resize_case resize_cases[] = {
	{ "bilinear_37_32", "src.png", PREPROCESS_BILINEAR, 37, 32 },
	{ "bicubic_37_32", "src.png", PREPROCESS_BICUBIC, 37, 32 },
	{ "bilinear_256_224", "src.png", PREPROCESS_BILINEAR, 256, 224 },
	{ "bicubic_256_224", "src.png", PREPROCESS_BICUBIC, 256, 224 },
	{ "bilinear_t_37_32", "src_t.png", PREPROCESS_BILINEAR, 37, 32 },
	{ "bicubic_t_100_96", "src_t.png", PREPROCESS_BICUBIC, 100, 96 },
	{ "bilinear_127_120", "src.png", PREPROCESS_BILINEAR, 127, 120 },
	{ "crop_40x37_32", "crop_40x37.png", PREPROCESS_BILINEAR, 37, 32 },
	{ "imagenet_bilinear_256_224", "photo_500x375.jpg", PREPROCESS_BILINEAR, 256, 224 },
	{ "imagenet_bicubic_256_224", "photo_500x375.jpg", PREPROCESS_BICUBIC, 256, 224 },
};

static void test_resize_crop_matches_pil(void **state)
{
	struct preprocess_scratch scratch = { 0 };
	struct image_u8 src = { 0 }, ref = { 0 }, out = { 0 };
	struct preprocess_options o;
	struct qcal_err err;
	char rel[256];
	int worst = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(resize_cases) / sizeof(resize_cases[0]); i++) {
		const struct resize_case *c = &resize_cases[i];
		size_t at;
		snprintf(rel, sizeof(rel), "resize/%s", c->src);
		load(&src, rel);
		snprintf(rel, sizeof(rel), "resize/%s.png", c->name);
		load(&ref, rel);
		preprocess_options_init(&o, c->crop, NULL, NULL);
		o.resize_size = c->resize_size;
		o.interp = c->interp;
		assert_int_equal(preprocess_validate(&o, &err), QCAL_OK);
		assert_int_equal(preprocess_geometry(&out, &src, &o, &scratch, &err), QCAL_OK);
		assert_int_equal(out.w, ref.w);
		assert_int_equal(out.h, ref.h);
		int d = ds_max_diff_u8(out.data, ref.data, (size_t)out.w * out.h * 3, &at);
		printf("  %-26s %3dx%-3d -> %3dx%-3d %-8s max|diff| vs PIL = %d LSB\n", c->name,
		       src.w, src.h, out.w, out.h, preprocess_interp_name(c->interp), d);
		if (d > worst)
			worst = d;
	}
	printf("  worst: %d LSB (allowed 1)\n", worst);
	image_free(&src);
	image_free(&ref);
	image_free(&out);
	preprocess_scratch_free(&scratch);
	assert_true(worst <= 1);
}

struct direct_case {
	const char *name;
	enum preprocess_interp interp;
	int w, h;
};

/* Plain PIL Image.resize((w, h)) including one-axis-only cases. */
static void test_direct_resize_matches_pil(void **state)
{
	static const struct direct_case cases[] = {
		{ "direct_bicubic_181x64", PREPROCESS_BICUBIC, 181, 64 },
		{ "direct_bilinear_90x127", PREPROCESS_BILINEAR, 90, 127 },
		{ "direct_bicubic_200x300", PREPROCESS_BICUBIC, 200, 300 },
		{ "direct_bilinear_7x5", PREPROCESS_BILINEAR, 7, 5 },
	};
	struct preprocess_scratch scratch = { 0 };
	struct image_u8 src = { 0 }, ref = { 0 }, out = { 0 };
	struct qcal_err err;
	char rel[256];
	int worst = 0;

	(void)state;
	load(&src, "resize/src.png");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(rel, sizeof(rel), "resize/%s.png", cases[i].name);
		load(&ref, rel);
		assert_int_equal(preprocess_resize_window(&out, &src, cases[i].w, cases[i].h, 0, 0,
							  cases[i].w, cases[i].h,
							  cases[i].interp, &scratch, &err),
				 QCAL_OK);
		assert_int_equal(out.w, ref.w);
		assert_int_equal(out.h, ref.h);
		int d = ds_max_diff_u8(out.data, ref.data, (size_t)out.w * out.h * 3, NULL);
		printf("  %-24s max|diff| vs PIL = %d LSB\n", cases[i].name, d);
		if (d > worst)
			worst = d;
	}
	image_free(&src);
	image_free(&ref);
	image_free(&out);
	preprocess_scratch_free(&scratch);
	assert_true(worst <= 1);
}

/* The window shortcut equals full resize + crop, for random windows. */
static void test_window_equals_full_then_crop(void **state)
{
	struct preprocess_scratch scratch = { 0 };
	struct image_u8 src = { 0 }, full = { 0 }, win = { 0 };
	struct qcal_err err;
	struct qcal_rng rng;

	(void)state;
	load(&src, "resize/src.png");
	qcal_rng_seed(&rng, 7);
	for (int t = 0; t < 40; t++) {
		int ow = 1 + (int)qcal_rng_below(&rng, 260), oh = 1 + (int)qcal_rng_below(&rng, 200);
		int ww = 1 + (int)qcal_rng_below(&rng, (uint64_t)ow);
		int wh = 1 + (int)qcal_rng_below(&rng, (uint64_t)oh);
		int x0 = (int)qcal_rng_below(&rng, (uint64_t)(ow - ww + 1));
		int y0 = (int)qcal_rng_below(&rng, (uint64_t)(oh - wh + 1));
		enum preprocess_interp ip = t % 2 ? PREPROCESS_BICUBIC : PREPROCESS_BILINEAR;
		if (t == 0) { /* one axis unchanged */
			ow = src.w;
		}
		assert_int_equal(preprocess_resize_window(&full, &src, ow, oh, 0, 0, ow, oh, ip,
							  &scratch, &err), QCAL_OK);
		assert_int_equal(preprocess_resize_window(&win, &src, ow, oh, x0, y0, ww, wh, ip,
							  &scratch, &err), QCAL_OK);
		for (int y = 0; y < wh; y++)
			assert_memory_equal(win.data + (size_t)y * ww * 3,
					    full.data + ((size_t)(y0 + y) * ow + x0) * 3,
					    (size_t)ww * 3);
	}
	image_free(&src);
	image_free(&full);
	image_free(&win);
	preprocess_scratch_free(&scratch);
}

/* Decode -> Resize -> CenterCrop -> ToTensor -> Normalize, bit for bit. */
static void test_pipeline_bit_exact(void **state)
{
	struct preprocess_scratch scratch = { 0 };
	struct image_u8 src = { 0 }, out = { 0 };
	struct preprocess_options o;
	struct preprocess_lut lut;
	struct qcal_err err;
	int64_t dims[4];
	float got[3 * 32 * 32];

	(void)state;
	load(&src, "resize/src.png");
	for (int k = 0; k < 2; k++) {
		preprocess_options_init(&o, 32, cifar_mean, cifar_std);
		o.interp = k ? PREPROCESS_BICUBIC : PREPROCESS_BILINEAR;
		assert_int_equal(preprocess_default_resize_size(32), 37);
		assert_int_equal(preprocess_geometry(&out, &src, &o, &scratch, &err), QCAL_OK);
		preprocess_lut_init(&lut, &o);
		preprocess_normalize(got, out.data, out.h, out.w, &lut);
		float *ref = ds_expected(k ? "pipeline/bicubic_37_32" : "pipeline/bilinear_37_32",
					 dims);
		assert_int_equal(dims[0] * dims[1] * dims[2], 3 * 32 * 32);
		size_t bad = ds_count_bit_diffs(got, ref, 3 * 32 * 32);
		printf("  %s pipeline: %zu of %d floats differ from torchvision\n",
		       preprocess_interp_name(o.interp), bad, 3 * 32 * 32);
		assert_int_equal(bad, 0);
		/* The comparison notices a one-ulp change. */
		got[100] = nextafterf(got[100], INFINITY);
		assert_int_equal(ds_count_bit_diffs(got, ref, 3 * 32 * 32), 1);
		free(ref);
	}
	image_free(&src);
	image_free(&out);
	preprocess_scratch_free(&scratch);
}

static void test_norm_tables(void **state)
{
	struct preprocess_options o;
	struct preprocess_lut lut;
	int64_t dims[4];
	float *ref;

	(void)state;
	preprocess_options_init(&o, 32, cifar_mean, cifar_std);
	preprocess_lut_init(&lut, &o);
	ref = ds_expected("norm/cifar", dims);
	assert_int_equal(dims[0] * dims[1], 3 * 256);
	assert_int_equal(ds_count_bit_diffs(&lut.v[0][0], ref, 3 * 256), 0);
	free(ref);
	preprocess_options_init(&o, 224, imagenet_mean, imagenet_std);
	preprocess_lut_init(&lut, &o);
	ref = ds_expected("norm/imagenet", dims);
	assert_int_equal(ds_count_bit_diffs(&lut.v[0][0], ref, 3 * 256), 0);
	free(ref);
	/* Folded: (p - 128) / 128 exactly, the J5 input's fixed 1/128 scale. */
	o.norm = PREPROCESS_NORM_FOLDED;
	preprocess_lut_init(&lut, &o);
	for (int c = 0; c < 3; c++)
		for (int p = 0; p < 256; p++)
			assert_true(lut.v[c][p] == (float)((p - 128) / 128.0));
	assert_true(lut.v[0][0] == -1.0f && lut.v[2][255] == 127.0f / 128.0f);
}

static void test_geometry_rules(void **state)
{
	struct preprocess_scratch scratch = { 0 };
	struct image_u8 in = { 0 }, out = { 0 };
	struct preprocess_options o;
	struct qcal_err err;
	int h, w, top, left;

	(void)state;
	/* torchvision's Resize size rule, both orientations and a square. */
	assert_int_equal(preprocess_resized_dims(375, 500, 256, &h, &w, &err), QCAL_OK);
	assert_int_equal(h, 256);
	assert_int_equal(w, 341);
	assert_int_equal(preprocess_resized_dims(500, 375, 256, &h, &w, &err), QCAL_OK);
	assert_int_equal(h, 341);
	assert_int_equal(w, 256);
	assert_int_equal(preprocess_resized_dims(100, 100, 37, &h, &w, &err), QCAL_OK);
	assert_int_equal(h, 37);
	assert_int_equal(w, 37);
	/* Extreme aspect ratios: fine while the long side fits... */
	assert_int_equal(preprocess_resized_dims(1, 4139, 21, &h, &w, &err), QCAL_OK);
	assert_int_equal(w, 86919);
	/* ...refused (not overflowed) beyond PREPROCESS_MAX_SIDE. */
	assert_int_equal(preprocess_resized_dims(1, 89478485, 256, &h, &w, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "89478485x1"));
	/* CenterCrop rounds half to even, like Python's round(). */
	preprocess_center_crop_offsets(37, 40, 32, &top, &left);
	assert_int_equal(top, 2); /* round(2.5) = 2 */
	assert_int_equal(left, 4);
	preprocess_center_crop_offsets(39, 35, 32, &top, &left);
	assert_int_equal(top, 4); /* round(3.5) = 4 */
	assert_int_equal(left, 2); /* round(1.5) = 2 */
	assert_int_equal(preprocess_default_resize_size(224), 256);
	/* A model-sized image goes straight through. */
	assert_int_equal(image_reserve(&in, 32, 32, 0, "t", &err), QCAL_OK);
	for (size_t i = 0; i < 32 * 32 * 3; i++)
		in.data[i] = (uint8_t)(i * 7);
	preprocess_options_init(&o, 32, NULL, NULL);
	assert_int_equal(preprocess_geometry(&out, &in, &o, &scratch, &err), QCAL_OK);
	assert_int_equal(out.w, 32);
	assert_memory_equal(out.data, in.data, 32 * 32 * 3);
	/* Invalid options name the rule. */
	o.resize_size = 30;
	assert_int_equal(preprocess_validate(&o, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "not below the crop"));
	o.resize_size = 0;
	o.std[1] = 0;
	assert_int_equal(preprocess_validate(&o, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "channel 1"));
	enum preprocess_interp ip;
	assert_int_equal(preprocess_interp_parse("BICUBIC", &ip, &err), QCAL_OK);
	assert_int_equal(ip, PREPROCESS_BICUBIC);
	assert_int_equal(preprocess_interp_parse("lanczos", &ip, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "lanczos"));
	image_free(&in);
	image_free(&out);
	preprocess_scratch_free(&scratch);
	preprocess_scratch_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resize_crop_matches_pil),
		cmocka_unit_test(test_direct_resize_matches_pil),
		cmocka_unit_test(test_window_equals_full_then_crop),
		cmocka_unit_test(test_pipeline_bit_exact),
		cmocka_unit_test(test_norm_tables),
		cmocka_unit_test(test_geometry_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
