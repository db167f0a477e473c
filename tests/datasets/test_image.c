/*
 * Decoding against Pillow: every file in fixtures/decode (each PNG colour
 * type and bit depth, palettes with tRNS, Adam7, every JPEG flavour
 * including CMYK/YCCK) must decode to exactly Pillow's
 * Image.open(f).convert("RGB").  Every file in fixtures/bad must fail with
 * the expected status and a message naming the file, and so must every
 * fuzzer regression in fuzz/regressions.  One test proves the comparison
 * catches a single changed pixel.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/image.h"
#include "datasets/preprocess.h"
#include "tests/common/test_util.h"
#include "tests/datasets/ds_fixture.h"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted regular-file names of a folder (caller frees each and the array). */
static char **list_folder(const char *dir, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **names = NULL;
	size_t cap = 0;

	*n = 0;
	if (!d)
		return NULL;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || !strcmp(e->d_name, "README.md"))
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			names = realloc(names, cap * sizeof(*names));
			assert_non_null(names);
		}
		names[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	if (*n)
		qsort(names, *n, sizeof(*names), cmp_names);
	return names;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* Decode fixture decode/<name> and compare with Pillow; returns max diff. */
static int compare_with_pillow(struct image_u8 *img, const char *name)
{
	char rel[512], path[1024];
	struct qcal_err err;
	int64_t dims[4];
	float *ref;
	uint8_t *ref8;
	size_t n;
	int diff;

	snprintf(rel, sizeof(rel), "decode/%s", name);
	ds_fixture_path(path, sizeof(path), rel);
	if (image_decode_file(img, path, NULL, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	snprintf(rel, sizeof(rel), "decode/%s", name);
	ref = ds_expected(rel, dims);
	assert_int_equal(dims[0], img->h);
	assert_int_equal(dims[1], img->w);
	assert_int_equal(dims[2], 3);
	n = (size_t)img->h * img->w * 3;
	ref8 = malloc(n);
	assert_non_null(ref8);
	for (size_t i = 0; i < n; i++)
		ref8[i] = (uint8_t)ref[i];
	diff = ds_max_diff_u8(img->data, ref8, n, NULL);
	free(ref8);
	free(ref);
	return diff;
}

static void test_decode_matches_pillow(void **state)
{
	char dir[1024];
	struct image_u8 img = { 0 };
	size_t n, png = 0, jpeg = 0;
	char **names;
	int failures = 0;

	(void)state;
	names = list_folder(ds_fixture_path(dir, sizeof(dir), "decode"), &n);
	assert_true(n >= 40);
	for (size_t i = 0; i < n; i++) {
		int diff = compare_with_pillow(&img, names[i]);
		printf("  %-24s %3dx%-3d max|diff| vs Pillow = %d %s\n", names[i], img.w,
		       img.h, diff, diff ? "FAIL" : "OK");
		failures += diff != 0;
		if (strstr(names[i], ".png"))
			png++;
		else
			jpeg++;
	}
	printf("  %zu PNG and %zu JPEG files\n", png, jpeg);
	free_names(names, n);
	image_free(&img);
	assert_int_equal(failures, 0);
}

/* The comparison must notice one changed sample. */
static void test_checker_catches_one_lsb(void **state)
{
	uint8_t a[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	uint8_t b[12];
	size_t worst;

	(void)state;
	memcpy(b, a, sizeof(a));
	assert_int_equal(ds_max_diff_u8(a, b, sizeof(a), &worst), 0);
	b[7] ^= 1;
	assert_int_equal(ds_max_diff_u8(a, b, sizeof(a), &worst), 1);
	assert_int_equal(worst, 7);
}

/* Memory and file entry points agree; the pixel buffer is reused. */
static void test_decode_mem_and_reuse(void **state)
{
	char path[1024];
	struct image_u8 big = { 0 }, img = { 0 };
	struct qcal_err err;
	uint8_t *buf = NULL;
	size_t cap = 0, size;
	uint8_t *first;

	(void)state;
	ds_fixture_path(path, sizeof(path), "decode/rgb_progressive.jpg");
	assert_int_equal(image_decode_file(&big, path, NULL, &err), QCAL_OK);
	assert_int_equal(image_read_file(path, &buf, &cap, &size, NULL, &err), QCAL_OK);
	assert_int_equal(image_sniff(buf, size), IMAGE_FORMAT_JPEG);
	assert_int_equal(image_decode_mem(&img, buf, size, path, NULL, &err), QCAL_OK);
	assert_int_equal(img.w, big.w);
	assert_int_equal(img.h, big.h);
	assert_memory_equal(img.data, big.data, (size_t)img.w * img.h * 3);
	first = img.data;
	/* A smaller image lands in the same allocation. */
	ds_fixture_path(path, sizeof(path), "decode/g8.png");
	assert_int_equal(image_decode_file(&img, path, NULL, &err), QCAL_OK);
	assert_ptr_equal(img.data, first);
	assert_int_equal(img.w, 13);
	assert_int_equal(img.h, 7);
	free(buf);
	image_free(&img);
	image_free(&big);
	image_free(NULL);
}

static void test_pixel_limit(void **state)
{
	char path[1024];
	struct image_u8 img = { 0 };
	struct image_decode_options opt = { .max_pixels = 43 * 29 - 1 };
	struct qcal_err err;

	(void)state;
	ds_fixture_path(path, sizeof(path), "decode/rgb420.jpg");
	assert_int_equal(image_decode_file(&img, path, &opt, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "rgb420.jpg"));
	assert_non_null(strstr(err.msg, "43x29"));
	opt.max_pixels = 43 * 29;
	assert_int_equal(image_decode_file(&img, path, &opt, &err), QCAL_OK);
	ds_fixture_path(path, sizeof(path), "decode/rgb8.png");
	opt.max_pixels = 13 * 7 - 1;
	assert_int_equal(image_decode_file(&img, path, &opt, &err), QCAL_ERANGE);
	opt.max_file_bytes = 10;
	assert_int_equal(image_decode_file(&img, path, &opt, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "exceeds the limit"));
	/* Progressive JPEGs: scan count and decoder memory are bounded. */
	memset(&opt, 0, sizeof(opt));
	ds_fixture_path(path, sizeof(path), "decode/rgb_progressive.jpg");
	opt.max_jpeg_scans = 3;
	assert_int_equal(image_decode_file(&img, path, &opt, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "more than 3 scans"));
	opt.max_jpeg_scans = 0;
	opt.max_jpeg_memory = 4096;
	assert_int_equal(image_decode_file(&img, path, &opt, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "decoder memory"));
	assert_non_null(strstr(err.msg, "rgb_progressive.jpg"));
	image_free(&img);
}

struct bad_case {
	const char *file;
	enum qcal_status status;
	const char *says; /* a phrase the message must contain */
};

static const struct bad_case bad_cases[] = {
	{ "truncated_idat.png", QCAL_EFORMAT, "truncated" },
	{ "truncated_no_iend.png", QCAL_EFORMAT, "truncated" },
	{ "crc_mismatch.png", QCAL_EFORMAT, "CRC" },
	{ "crc_ancillary.png", QCAL_EFORMAT, "CRC" },
	{ "bad_zlib.png", QCAL_EFORMAT, "corrupt PNG" },
	{ "short_idat.png", QCAL_EFORMAT, "image data" },
	{ "palette_index.png", QCAL_EFORMAT, "palette index" },
	{ "huge_dims.png", QCAL_ERANGE, "100000x100000" },
	{ "zero_width.png", QCAL_EFORMAT, "corrupt PNG" },
	{ "signature_only.png", QCAL_EFORMAT, "truncated" },
	{ "truncated_scan.jpg", QCAL_EFORMAT, "Premature end" },
	{ "truncated_header.jpg", QCAL_EFORMAT, "corrupt JPEG" },
	{ "no_eoi.jpg", QCAL_EFORMAT, "Premature end" },
	{ "truncated_progressive.jpg", QCAL_EFORMAT, "Premature end" },
	{ "marker_in_scan.jpg", QCAL_EFORMAT, "corrupt JPEG" },
	{ "junk_in_interval.jpg", QCAL_EFORMAT, "extraneous bytes before marker 0xd0" },
	{ "junk_before_eoi_long.jpg", QCAL_EFORMAT, "extraneous bytes before marker 0xd9" },
	{ "bad_sof.jpg", QCAL_EFORMAT, "corrupt JPEG" },
	{ "huge_dims.jpg", QCAL_ERANGE, "65000x65000" },
	{ "soi_only.jpg", QCAL_EFORMAT, "corrupt JPEG" },
	{ "text.jpg", QCAL_EFORMAT, "not a PNG or JPEG" },
	{ "empty.png", QCAL_EFORMAT, "empty file" },
	{ "bitmap.jpg", QCAL_EFORMAT, "BMP images are not supported" },
	{ "gif.png", QCAL_EFORMAT, "GIF images are not supported" },
};

static void test_bad_inputs(void **state)
{
	char rel[256], path[1024];
	struct image_u8 img = { 0 };
	struct qcal_err err;
	int failures = 0;
	size_t n_files;
	char **names;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		enum qcal_status st;
		snprintf(rel, sizeof(rel), "bad/%s", c->file);
		ds_fixture_path(path, sizeof(path), rel);
		qcal_err_clear(&err);
		st = image_decode_file(&img, path, NULL, &err);
		int ok = st == c->status && strstr(err.msg, path) && strstr(err.msg, c->says) &&
			 img.w == 0 && img.h == 0 && !strchr(err.msg, '\n');
		printf("  %-26s %-15s %s\n      %s\n", c->file, qcal_status_name(st),
		       ok ? "OK" : "FAIL", err.msg);
		failures += !ok;
	}
	/* Every file in bad/ is covered by the table. */
	names = list_folder(ds_fixture_path(path, sizeof(path), "bad"), &n_files);
	assert_int_equal(n_files, sizeof(bad_cases) / sizeof(bad_cases[0]));
	free_names(names, n_files);
	/* Missing files and folders. */
	ds_fixture_path(path, sizeof(path), "bad/no_such_file.png");
	assert_int_equal(image_decode_file(&img, path, NULL, &err), QCAL_ENOENT);
	assert_non_null(strstr(err.msg, "no_such_file.png"));
	ds_fixture_path(path, sizeof(path), "bad");
	assert_int_equal(image_decode_file(&img, path, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, "not a regular file"));
	image_free(&img);
	assert_int_equal(failures, 0);
}

/* A few junk bytes that libjpeg's Huffman decoder read ahead and dropped
 * before an RST or EOI marker raise no warning and leave every MCU intact:
 * same pixels as the clean file (and as Pillow: see the decode fixtures). */
static void test_junk_read_ahead_is_harmless(void **state)
{
	char path[1024];
	struct image_u8 a = { 0 }, b = { 0 };
	struct qcal_err err;

	(void)state;
	ds_fixture_path(path, sizeof(path), "decode/rgb_restart.jpg");
	assert_int_equal(image_decode_file(&a, path, NULL, &err), QCAL_OK);
	ds_fixture_path(path, sizeof(path), "decode/junk_before_rst.jpg");
	assert_int_equal(image_decode_file(&b, path, NULL, &err), QCAL_OK);
	assert_int_equal(a.w, b.w);
	assert_memory_equal(a.data, b.data, (size_t)a.w * a.h * 3);
	ds_fixture_path(path, sizeof(path), "decode/rgb420.jpg");
	assert_int_equal(image_decode_file(&a, path, NULL, &err), QCAL_OK);
	ds_fixture_path(path, sizeof(path), "decode/junk_before_eoi.jpg");
	assert_int_equal(image_decode_file(&b, path, NULL, &err), QCAL_OK);
	assert_memory_equal(a.data, b.data, (size_t)a.w * a.h * 3);
	image_free(&a);
	image_free(&b);
}

/* Every proper prefix of a valid file is a truncated file: each one must
 * be refused (the file ends with IEND or EOI, so no prefix is complete). */
static void test_every_prefix_rejected(void **state)
{
	static const char *const files[] = {
		"rgb8.png", "p4_trns1.png", "rgba16_adam7.png", "g16.png",
		"rgb420.jpg", "rgb_progressive.jpg", "rgb_arith.jpg", "ycck_adobe.jpg",
	};
	char rel[256], path[1024];
	struct image_u8 img = { 0 };
	struct qcal_err err;
	uint8_t *buf = NULL;
	size_t cap = 0, size, tried = 0, accepted = 0;

	(void)state;
	for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
		snprintf(rel, sizeof(rel), "decode/%s", files[f]);
		ds_fixture_path(path, sizeof(path), rel);
		assert_int_equal(image_read_file(path, &buf, &cap, &size, NULL, &err), QCAL_OK);
		assert_int_equal(image_decode_mem(&img, buf, size, files[f], NULL, &err), QCAL_OK);
		for (size_t n = 0; n < size; n++) {
			enum qcal_status st = image_decode_mem(&img, buf, n, files[f], NULL, &err);
			tried++;
			if (st == QCAL_OK || !strstr(err.msg, files[f])) {
				printf("  %s: prefix of %zu bytes: %s\n", files[f], n,
				       st == QCAL_OK ? "accepted" : err.msg);
				accepted++;
			}
		}
	}
	printf("  %zu prefixes of %zu files, %zu accepted\n", tried,
	       sizeof(files) / sizeof(files[0]), accepted);
	free(buf);
	image_free(&img);
	assert_int_equal(accepted, 0);
}

/*
 * Files the fuzzer once crashed or hung on.  Undecodable ones must fail
 * with a message naming them; the ones that decode (the bug was further
 * on) must go through the resizer at every size the harness tries, or be
 * refused with QCAL_ERANGE.
 */
static void test_fuzz_regressions(void **state)
{
	char dir[1024], path[2048];
	struct image_decode_options opt = { .max_pixels = 1 << 22, .max_jpeg_scans = 500 };
	struct preprocess_scratch scratch = { 0 };
	struct image_u8 img = { 0 }, out = { 0 };
	struct preprocess_options pre;
	struct qcal_err err;
	size_t n;
	char **names;
	int failures = 0;

	(void)state;
	test_source_path(dir, sizeof(dir), "tests/datasets/fuzz/regressions");
	names = list_folder(dir, &n);
	for (size_t i = 0; i < n; i++) {
		int ok;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		qcal_err_clear(&err);
		enum qcal_status st = image_decode_file(&img, path, &opt, &err);
		if (st != QCAL_OK) {
			ok = strstr(err.msg, names[i]) && !strchr(err.msg, '\n');
			printf("  %-40s %s: %s\n", names[i], ok ? "OK" : "FAIL", err.msg);
		} else {
			int resized = 0, refused = 0;
			ok = 1;
			for (int size = 1; size <= 23; size++) {
				for (int ip = 0; ip < 2; ip++) {
					preprocess_options_init(&pre, size, NULL, NULL);
					pre.interp = ip ? PREPROCESS_BICUBIC : PREPROCESS_BILINEAR;
					st = preprocess_geometry(&out, &img, &pre, &scratch, &err);
					resized += st == QCAL_OK && out.w == size && out.h == size;
					refused += st == QCAL_ERANGE;
				}
			}
			ok = resized + refused == 46;
			printf("  %-40s %s: decodes to %dx%d; resized %d, refused %d of 46\n",
			       names[i], ok ? "OK" : "FAIL", img.w, img.h, resized, refused);
		}
		failures += !ok;
	}
	printf("  %zu regression files\n", n);
	assert_true(n >= 1);
	free_names(names, n);
	image_free(&img);
	image_free(&out);
	preprocess_scratch_free(&scratch);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decode_matches_pillow),
		cmocka_unit_test(test_checker_catches_one_lsb),
		cmocka_unit_test(test_decode_mem_and_reuse),
		cmocka_unit_test(test_pixel_limit),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_junk_read_ahead_is_harmless),
		cmocka_unit_test(test_every_prefix_rejected),
		cmocka_unit_test(test_fuzz_regressions),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
