/*
 * The loader end to end: the first 64 CIFAR-10 test images in ImageFolder
 * order, decoded and normalised with the model card's mean/std, must equal
 * reference.h5's images_u8 and input bit for bit (so they are the images
 * PyTorch evaluated); batches must be identical for 1, 2 and 3 workers and
 * equal a sequential decode-preprocess loop; shuffles and augmentation
 * must depend only on (seed, epoch, index) and match torchvision's
 * pad/crop/flip geometry; bad files must stop the epoch at their batch
 * with their name, or be skipped and recorded with skip_bad.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "core/h5.h"
#include "datasets/loader.h"
#include "model/swin_config.h"
#include "tests/common/test_util.h"
#include "tests/datasets/ds_fixture.h"

#define PER_IMAGE (3 * 32 * 32)

/* Everything an epoch delivered, concatenated. */
struct run {
	float *images;
	int *labels;
	size_t *indices;
	size_t n, batches;
	int last_count;
};

static void run_free(struct run *r)
{
	free(r->images);
	free(r->labels);
	free(r->indices);
	memset(r, 0, sizeof(*r));
}

static enum qcal_status run_epoch(struct run *r, const struct dataset *ds,
				  const struct loader_options *lo, struct qcal_err *err)
{
	struct loader *ld;
	struct loader_batch b;
	enum qcal_status st;

	memset(r, 0, sizeof(*r));
	st = loader_open(&ld, ds, lo, err);
	if (st != QCAL_OK)
		return st;
	r->images = malloc(ds->count * PER_IMAGE * sizeof(float));
	r->labels = malloc(ds->count * sizeof(int));
	r->indices = malloc(ds->count * sizeof(size_t));
	assert_non_null(r->images);
	while ((st = loader_next(ld, &b, err)) == QCAL_OK && b.count > 0) {
		assert_true(r->n + (size_t)b.count <= ds->count);
		memcpy(r->images + r->n * PER_IMAGE, b.images,
		       (size_t)b.count * PER_IMAGE * sizeof(float));
		memcpy(r->labels + r->n, b.labels, (size_t)b.count * sizeof(int));
		memcpy(r->indices + r->n, b.indices, (size_t)b.count * sizeof(size_t));
		r->n += (size_t)b.count;
		r->batches++;
		r->last_count = b.count;
	}
	loader_close(ld);
	return st;
}

static void assert_runs_equal(const struct run *a, const struct run *b)
{
	assert_int_equal(a->n, b->n);
	assert_int_equal(a->batches, b->batches);
	assert_memory_equal(a->images, b->images, a->n * PER_IMAGE * sizeof(float));
	assert_memory_equal(a->labels, b->labels, a->n * sizeof(int));
	assert_memory_equal(a->indices, b->indices, a->n * sizeof(size_t));
}

static void micro_config(struct swin_config *cfg)
{
	char path[1024];
	char *json;
	size_t size;
	struct qcal_err err;

	test_shared_path(path, sizeof(path), "models/swin-micro-cifar10/model.json");
	if (qcal_read_file(path, &json, &size, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	if (swin_config_from_json(cfg, json, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	free(json);
}

static void open_sample(struct dataset *ds)
{
	char path[1024];
	struct qcal_err err;

	test_source_path(path, sizeof(path), "data/cifar10-sample");
	if (dataset_open(ds, path, NULL, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
}

/* reference.h5 holds the first 64 test images in ImageFolder order: find
 * them, decode them, and match PyTorch's pixels and normalised floats. */
static void test_reference_h5_bit_exact(void **state)
{
	char path[1024];
	struct swin_config cfg;
	struct dataset ds;
	struct loader_options lo;
	struct preprocess_options pre;
	struct image_u8 img = { 0 };
	struct qcal_h5_shape shape;
	struct qcal_err err;
	struct run r;
	float *u8 = NULL, *input = NULL;
	int64_t *labels = NULL;
	hid_t f;

	(void)state;
	micro_config(&cfg);
	test_shared_path(path, sizeof(path), "models/swin-micro-cifar10/reference.h5");
	f = qcal_h5_open_read(path, &err);
	assert_true(f >= 0);
	assert_int_equal(qcal_h5_read_float(f, path, "images_u8", &u8, &shape, &err), QCAL_OK);
	assert_int_equal(shape.dims[0], 64);
	assert_int_equal(qcal_h5_read_float(f, path, "input", &input, &shape, &err), QCAL_OK);
	assert_int_equal(qcal_h5_read_int64(f, path, "labels", &labels, NULL, &err), QCAL_OK);
	H5Fclose(f);

	test_shared_path(path, sizeof(path), "data/cifar10/test");
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_OK);
	assert_int_equal(dataset_check_classes(&ds, cfg.num_classes, &err), QCAL_OK);
	for (int c = 0; c < cfg.num_classes; c++)
		assert_string_equal(ds.class_names[c], cfg.class_names[c]);
	dataset_limit(&ds, 64);
	/* Pixels: image k is test/airplane/<k>.jpg. */
	for (int k = 0; k < 64; k++) {
		char want[64];
		snprintf(want, sizeof(want), "/airplane/%04d.jpg", k);
		assert_non_null(strstr(ds.items[k].path, want));
		assert_int_equal(image_decode_file(&img, ds.items[k].path, NULL, &err), QCAL_OK);
		for (int i = 0; i < PER_IMAGE; i++)
			if (img.data[i] != (uint8_t)u8[(size_t)k * PER_IMAGE + i])
				fail_msg("%s: pixel %d differs from images_u8", ds.items[k].path, i);
	}
	/* Floats, through the loader, with the model card's mean/std. */
	preprocess_options_init(&pre, cfg.img_size, cfg.mean, cfg.std);
	loader_options_init(&lo, 16, 2, &pre);
	assert_int_equal(run_epoch(&r, &ds, &lo, &err), QCAL_OK);
	assert_int_equal(r.n, 64);
	assert_int_equal(r.batches, 4);
	size_t bad = ds_count_bit_diffs(r.images, input, 64 * PER_IMAGE);
	printf("  64 images: pixels equal images_u8; %zu of %d floats differ from input\n",
	       bad, 64 * PER_IMAGE);
	assert_int_equal(bad, 0);
	for (int k = 0; k < 64; k++)
		assert_int_equal(r.labels[k], labels[k]);
	run_free(&r);
	image_free(&img);
	dataset_free(&ds);
	swin_config_free(&cfg);
	free(u8);
	free(input);
	free(labels);
}

/* The same batches for any worker count, and equal to a plain loop. */
static void test_order_independent_of_workers(void **state)
{
	struct dataset ds;
	struct loader_options lo;
	struct preprocess_options pre;
	struct preprocess_lut lut;
	struct image_u8 img = { 0 };
	struct qcal_err err;
	struct run one, two, three;
	float *naive;

	(void)state;
	open_sample(&ds);
	preprocess_options_init(&pre, 32, NULL, NULL);
	pre.norm = PREPROCESS_NORM_FOLDED;
	loader_options_init(&lo, 7, 1, &pre);
	assert_int_equal(run_epoch(&one, &ds, &lo, &err), QCAL_OK);
	lo.workers = 2;
	assert_int_equal(run_epoch(&two, &ds, &lo, &err), QCAL_OK);
	lo.workers = 3;
	lo.prefetch = 1;
	assert_int_equal(run_epoch(&three, &ds, &lo, &err), QCAL_OK);
	assert_int_equal(one.n, 300);
	assert_int_equal(one.batches, 43); /* 42 x 7 + 6 */
	assert_int_equal(one.last_count, 6);
	assert_runs_equal(&one, &two);
	assert_runs_equal(&one, &three);
	/* Naive twin: decode and normalise one by one. */
	preprocess_lut_init(&lut, &pre);
	naive = malloc(PER_IMAGE * sizeof(float));
	for (size_t i = 0; i < ds.count; i++) {
		assert_int_equal(one.indices[i], i);
		assert_int_equal(one.labels[i], ds.items[i].label);
		assert_int_equal(image_decode_file(&img, ds.items[i].path, NULL, &err), QCAL_OK);
		preprocess_normalize(naive, img.data, 32, 32, &lut);
		assert_memory_equal(naive, one.images + i * PER_IMAGE, PER_IMAGE * sizeof(float));
	}
	free(naive);
	image_free(&img);
	run_free(&one);
	run_free(&two);
	run_free(&three);
	dataset_free(&ds);
}

static void test_shuffle(void **state)
{
	struct dataset ds;
	struct loader_options lo;
	struct preprocess_options pre;
	struct qcal_err err;
	struct run a, b;
	size_t order[300];

	(void)state;
	open_sample(&ds);
	preprocess_options_init(&pre, 32, NULL, NULL);
	loader_options_init(&lo, 32, 1, &pre);
	lo.shuffle = true;
	lo.shuffle_seed = 5;
	lo.epoch = 2;
	assert_int_equal(run_epoch(&a, &ds, &lo, &err), QCAL_OK);
	lo.workers = 2;
	assert_int_equal(run_epoch(&b, &ds, &lo, &err), QCAL_OK);
	assert_runs_equal(&a, &b);
	dataset_epoch_order(order, 300, 5, 2);
	for (size_t i = 0; i < 300; i++) {
		assert_int_equal(a.indices[i], order[i]);
		assert_int_equal(a.labels[i], ds.items[order[i]].label);
	}
	run_free(&a);
	run_free(&b);
	dataset_free(&ds);
}

/* Fixed draws give torchvision's F.pad -> F.crop -> F.hflip exactly. */
static void test_augment_matches_torchvision(void **state)
{
	static const struct { const char *name; enum augment_pad_mode mode; int top, left, flip; } cases[] = {
		{ "aug/reflect_0_0_0", AUGMENT_PAD_REFLECT, 0, 0, 0 },
		{ "aug/reflect_8_8_1", AUGMENT_PAD_REFLECT, 8, 8, 1 },
		{ "aug/reflect_3_6_1", AUGMENT_PAD_REFLECT, 3, 6, 1 },
		{ "aug/reflect_4_4_0", AUGMENT_PAD_REFLECT, 4, 4, 0 },
		{ "aug/zero_1_7_0", AUGMENT_PAD_ZERO, 1, 7, 0 },
		{ "aug/zero_8_0_1", AUGMENT_PAD_ZERO, 8, 0, 1 },
	};
	struct augment_options o = { .pad = 4, .hflip = true };
	uint8_t src[PER_IMAGE], out[PER_IMAGE], ref[PER_IMAGE];
	int64_t dims[4];
	float *f;

	(void)state;
	f = ds_expected("aug/src", dims);
	for (int i = 0; i < PER_IMAGE; i++)
		src[i] = (uint8_t)f[i];
	free(f);
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		struct augment_draw d = { cases[c].top, cases[c].left, cases[c].flip };
		o.pad_mode = cases[c].mode;
		augment_apply(out, src, 32, 32, &o, &d);
		f = ds_expected(cases[c].name, dims);
		for (int i = 0; i < PER_IMAGE; i++)
			ref[i] = (uint8_t)f[i];
		free(f);
		int diff = ds_max_diff_u8(out, ref, PER_IMAGE, NULL);
		printf("  %-20s max|diff| vs torchvision = %d\n", cases[c].name, diff);
		assert_int_equal(diff, 0);
	}
}

/* Same image, same epoch -> same crop and flip, whatever the workers,
 * batch size or resume point; another epoch -> other draws. */
static void test_augment_determinism(void **state)
{
	struct dataset ds;
	struct augment_options aug = { .pad = 4, .pad_mode = AUGMENT_PAD_REFLECT,
				       .hflip = true, .seed = 11 };
	struct loader_options lo;
	struct preprocess_options pre;
	struct qcal_err err;
	struct run a, b, c, d, e;
	int flips = 0, tops[9] = { 0 };

	(void)state;
	open_sample(&ds);
	preprocess_options_init(&pre, 32, NULL, NULL);
	loader_options_init(&lo, 5, 1, &pre);
	lo.augment = &aug;
	lo.shuffle = true;
	lo.shuffle_seed = 3;
	lo.epoch = 3;
	assert_int_equal(run_epoch(&a, &ds, &lo, &err), QCAL_OK);
	lo.workers = 2;
	assert_int_equal(run_epoch(&b, &ds, &lo, &err), QCAL_OK);
	assert_runs_equal(&a, &b);
	/* Another batch size: same image for each dataset index. */
	lo.batch = 13;
	assert_int_equal(run_epoch(&c, &ds, &lo, &err), QCAL_OK);
	assert_memory_equal(a.indices, c.indices, 300 * sizeof(size_t));
	assert_memory_equal(a.images, c.images, 300 * PER_IMAGE * sizeof(float));
	/* Resume at batch 9 of 13-image batches: the tail of the full run. */
	lo.first_batch = 9;
	assert_int_equal(run_epoch(&d, &ds, &lo, &err), QCAL_OK);
	assert_int_equal(d.n, 300 - 9 * 13);
	assert_memory_equal(d.images, c.images + 9 * 13 * PER_IMAGE,
			    d.n * PER_IMAGE * sizeof(float));
	/* The next epoch draws differently (unshuffled, to compare by index). */
	lo.first_batch = 0;
	lo.shuffle = false;
	lo.epoch = 4;
	assert_int_equal(run_epoch(&e, &ds, &lo, &err), QCAL_OK);
	size_t differ = 0;
	for (size_t i = 0; i < 300; i++) {
		size_t j = 0;
		while (a.indices[j] != i)
			j++;
		differ += memcmp(a.images + j * PER_IMAGE, e.images + i * PER_IMAGE,
				 PER_IMAGE * sizeof(float)) != 0;
	}
	printf("  epoch 3 vs 4: %zu of 300 images differ\n", differ);
	assert_true(differ > 250);
	/* The draws themselves look uniform. */
	for (uint64_t i = 0; i < 3000; i++) {
		struct augment_draw dr = augment_draw(&aug, 0, i);
		assert_true(dr.top >= 0 && dr.top <= 8 && dr.left >= 0 && dr.left <= 8);
		tops[dr.top]++;
		flips += dr.flip;
	}
	for (int t = 0; t < 9; t++)
		assert_true(tops[t] > 250 && tops[t] < 420);
	assert_true(flips > 1350 && flips < 1650);
	run_free(&a);
	run_free(&b);
	run_free(&c);
	run_free(&d);
	run_free(&e);
	dataset_free(&ds);
}

static void copy_file(const char *from, const char *to, size_t keep)
{
	char *data;
	size_t size;
	struct qcal_err err;

	assert_int_equal(qcal_read_file(from, &data, &size, &err), QCAL_OK);
	assert_int_equal(qcal_write_file_atomic(to, data, keep && keep < size ? keep : size, &err),
			 QCAL_OK);
	free(data);
}

/* A bad file stops the epoch at its batch, naming it; skip_bad leaves it
 * out, counts it and keeps its name and message. */
static void test_bad_files(void **state)
{
	char dir[512], path[1024], sub[1024];
	struct dataset sample, ds;
	struct loader_options lo;
	struct preprocess_options pre;
	struct loader *ld;
	struct loader_batch b;
	struct qcal_err err;
	const struct loader_skip *skips;
	size_t nskips;
	int total = 0, batches = 0, skipped = 0;

	(void)state;
	open_sample(&sample);
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	snprintf(sub, sizeof(sub), "%s/a", dir);
	mkdir(sub, 0755);
	snprintf(sub, sizeof(sub), "%s/b", dir);
	mkdir(sub, 0755);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/a/%04d.jpg", dir, i);
		copy_file(sample.items[i].path, path, 0);
	}
	for (int i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/b/%04d.jpg", dir, i);
		copy_file(sample.items[30 + i].path, path, 0);
	}
	snprintf(path, sizeof(path), "%s/b/bad_trunc.jpg", dir);
	copy_file(sample.items[40].path, path, 300);
	snprintf(path, sizeof(path), "%s/b/text.jpg", dir);
	assert_int_equal(qcal_write_file_atomic(path, "not an image\n", 13, &err), QCAL_OK);
	assert_int_equal(dataset_open(&ds, dir, NULL, &err), QCAL_OK);
	assert_int_equal(ds.count, 10);
	preprocess_options_init(&pre, 32, NULL, NULL);
	/* Batches of 3: [a0 a1 a2] [a3 a4 b0] [b1 b2 bad_trunc] [text]. */
	loader_options_init(&lo, 3, 2, &pre);
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_OK);
	assert_int_equal(loader_total(ld), 10);
	assert_int_equal(loader_batch_count(ld), 4);
	for (int k = 0; k < 2; k++) {
		assert_int_equal(loader_next(ld, &b, &err), QCAL_OK);
		assert_int_equal(b.count, 3);
		assert_int_equal(b.number, k);
	}
	assert_int_equal(loader_next(ld, &b, &err), QCAL_EFORMAT);
	printf("  without skip_bad: %s\n", err.msg);
	assert_non_null(strstr(err.msg, "b/bad_trunc.jpg"));
	assert_non_null(strstr(err.msg, "Premature end"));
	qcal_err_clear(&err);
	assert_int_equal(loader_next(ld, &b, &err), QCAL_EFORMAT); /* sticky */
	assert_non_null(strstr(err.msg, "bad_trunc.jpg"));
	loader_close(ld);

	lo.skip_bad = true;
	qcal_err_clear(&err);
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_OK);
	while (loader_next(ld, &b, &err) == QCAL_OK && b.count > 0) {
		total += b.count;
		skipped += b.skipped;
		batches++;
		for (int i = 0; i < b.count; i++)
			assert_null(strstr(ds.items[b.indices[i]].path, "bad_trunc"));
	}
	assert_int_equal(err.status, QCAL_OK);
	assert_int_equal(total, 8);
	assert_int_equal(batches, 3); /* the all-skipped last batch is not delivered */
	assert_int_equal(skipped, 1);
	skips = loader_skipped(ld, &nskips);
	assert_int_equal(nskips, 2);
	assert_non_null(strstr(skips[0].path, "b/bad_trunc.jpg"));
	assert_non_null(strstr(skips[0].message, "bad_trunc.jpg: corrupt JPEG"));
	assert_non_null(strstr(skips[1].path, "b/text.jpg"));
	assert_non_null(strstr(skips[1].message, "not a PNG or JPEG"));
	printf("  skip_bad: %d images delivered, %zu skipped: %s | %s\n", total, nskips,
	       skips[0].message, skips[1].message);
	loader_close(ld);
	dataset_free(&ds);
	dataset_free(&sample);
	test_rmtree(dir);
}

/* A large image through the loader equals torchvision's eval transform. */
static void test_resize_through_loader(void **state)
{
	char dir[512], path[1024], src[1024];
	struct dataset ds;
	struct loader_options lo;
	struct preprocess_options pre;
	struct qcal_err err;
	struct run r;
	int64_t dims[4];
	float *ref;

	(void)state;
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	ds_fixture_path(src, sizeof(src), "resize/src.png");
	snprintf(path, sizeof(path), "%s/big.png", dir);
	copy_file(src, path, 0);
	assert_int_equal(dataset_open(&ds, dir, NULL, &err), QCAL_OK);
	assert_int_equal(ds.layout, DATASET_UNLABELLED);
	static const float mean[3] = { 0.49140000343322754f, 0.4821999967098236f,
				       0.4465000033378601f };
	static const float std[3] = { 0.24699999392032623f, 0.2434999942779541f,
				      0.26159998774528503f };
	preprocess_options_init(&pre, 32, mean, std);
	loader_options_init(&lo, 4, 1, &pre);
	assert_int_equal(run_epoch(&r, &ds, &lo, &err), QCAL_OK);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.labels[0], -1);
	ref = ds_expected("pipeline/bilinear_37_32", dims);
	assert_int_equal(ds_count_bit_diffs(r.images, ref, PER_IMAGE), 0);
	free(ref);
	run_free(&r);
	dataset_free(&ds);
	test_rmtree(dir);
}

static void test_options_and_early_close(void **state)
{
	struct dataset ds, empty;
	struct loader_options lo;
	struct preprocess_options pre;
	struct augment_options aug = { .pad = 32 };
	struct loader *ld;
	struct loader_batch b;
	struct qcal_err err;

	(void)state;
	open_sample(&ds);
	preprocess_options_init(&pre, 32, NULL, NULL);
	loader_options_init(&lo, 0, 1, &pre);
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "batch 0"));
	assert_null(ld);
	lo.batch = 8;
	lo.workers = 0;
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "workers 0"));
	lo.workers = 2;
	lo.augment = &aug;
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_EINVAL);
	assert_non_null(strstr(err.msg, "reflect padding 32"));
	lo.augment = NULL;
	memset(&empty, 0, sizeof(empty));
	assert_int_equal(loader_open(&ld, &empty, &lo, &err), QCAL_EFORMAT);
	/* Close before, during and after an epoch. */
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_OK);
	loader_close(ld);
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_OK);
	assert_int_equal(loader_next(ld, &b, &err), QCAL_OK);
	assert_int_equal(b.count, 8);
	loader_close(ld);
	lo.first_batch = 1000; /* past the end: an empty epoch */
	assert_int_equal(loader_open(&ld, &ds, &lo, &err), QCAL_OK);
	assert_int_equal(loader_total(ld), 0);
	assert_int_equal(loader_next(ld, &b, &err), QCAL_OK);
	assert_int_equal(b.count, 0);
	assert_int_equal(loader_next(ld, &b, &err), QCAL_OK);
	assert_int_equal(b.count, 0);
	loader_close(ld);
	loader_close(NULL);
	dataset_free(&ds);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reference_h5_bit_exact),
		cmocka_unit_test(test_order_independent_of_workers),
		cmocka_unit_test(test_shuffle),
		cmocka_unit_test(test_augment_matches_torchvision),
		cmocka_unit_test(test_augment_determinism),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_resize_through_loader),
		cmocka_unit_test(test_options_and_early_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
