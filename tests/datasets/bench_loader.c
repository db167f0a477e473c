/*
 * Loader throughput (not a test): images/s for decode alone and for the
 * full decode + preprocess + normalise path through the loader with 1 and
 * 2 workers, on
 *   - the 10,000 CIFAR-10 test JPEGs (32x32, straight through), and
 *   - ImageNet-like 500x375 JPEGs (made here from CIFAR images with
 *     libjpeg, quality 90) resized to 256 and centre-cropped to 224.
 * The consumer does nothing with the batches, so this is the ceiling the
 * loader puts on evaluation speed.
 *
 *   bench_ds_loader [shared_dir] [repeats]
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>

#include "core/clock.h"
#include "datasets/loader.h"
#include "tests/common/test_util.h"

static double run_loader(const struct dataset *ds, int size, int workers, int batch)
{
	struct preprocess_options pre;
	struct loader_options lo;
	struct loader *ld;
	struct loader_batch b;
	struct qcal_err err;
	size_t n = 0;
	double t0 = qcal_now();

	preprocess_options_init(&pre, size, NULL, NULL);
	loader_options_init(&lo, batch, workers, &pre);
	if (loader_open(&ld, ds, &lo, &err) != QCAL_OK) {
		fprintf(stderr, "%s\n", err.msg);
		exit(1);
	}
	while (loader_next(ld, &b, &err) == QCAL_OK && b.count > 0)
		n += (size_t)b.count;
	loader_close(ld);
	if (n != ds->count) {
		fprintf(stderr, "loader stopped after %zu images: %s\n", n, err.msg);
		exit(1);
	}
	return (double)n / (qcal_now() - t0);
}

static double run_decode(const struct dataset *ds)
{
	struct image_u8 img = { 0 };
	struct qcal_err err;
	double t0 = qcal_now();

	for (size_t i = 0; i < ds->count; i++) {
		if (image_decode_file(&img, ds->items[i].path, NULL, &err) != QCAL_OK) {
			fprintf(stderr, "%s\n", err.msg);
			exit(1);
		}
	}
	image_free(&img);
	return (double)ds->count / (qcal_now() - t0);
}

static void write_jpeg(const char *path, const struct image_u8 *img)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr jerr;
	FILE *f = fopen(path, "wb");

	if (!f)
		exit(1);
	c.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&c);
	jpeg_stdio_dest(&c, f);
	c.image_width = (JDIMENSION)img->w;
	c.image_height = (JDIMENSION)img->h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, 90, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = img->data + (size_t)c.next_scanline * img->w * 3;
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	fclose(f);
}

static void best_of(const char *label, int repeats, double (*fn)(void *), void *arg)
{
	double best = 0;
	for (int r = 0; r < repeats; r++) {
		double v = fn(arg);
		if (v > best)
			best = v;
	}
	printf("  %-44s %9.0f images/s\n", label, best);
	fflush(stdout);
}

struct job {
	const struct dataset *ds;
	int size, workers;
};

static double job_loader(void *arg)
{
	struct job *j = arg;
	return run_loader(j->ds, j->size, j->workers, 256);
}

static double job_decode(void *arg)
{
	struct job *j = arg;
	return run_decode(j->ds);
}

int main(int argc, char **argv)
{
	char path[1024], dir[512];
	struct dataset ds, big;
	struct qcal_err err;
	struct preprocess_scratch scratch = { 0 };
	struct image_u8 src = { 0 }, up = { 0 };
	int repeats = argc > 2 ? atoi(argv[2]) : 3;
	struct job j;

	if (argc > 1)
		snprintf(path, sizeof(path), "%s/data/cifar10/test", argv[1]);
	else
		test_shared_path(path, sizeof(path), "data/cifar10/test");
	if (dataset_open(&ds, path, NULL, &err) != QCAL_OK) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	printf("CIFAR-10 test, %zu JPEGs of 32x32 (best of %d):\n", ds.count, repeats);
	j = (struct job){ &ds, 32, 1 };
	best_of("decode only, 1 thread", repeats, job_decode, &j);
	best_of("loader: decode+normalise, 1 worker", repeats, job_loader, &j);
	j.workers = 2;
	best_of("loader: decode+normalise, 2 workers", repeats, job_loader, &j);

	/* 400 ImageNet-sized JPEGs made from CIFAR images. */
	if (!test_tmpdir(dir, sizeof(dir)))
		return 1;
	for (int i = 0; i < 400; i++) {
		char out[1024];
		if (image_decode_file(&src, ds.items[(size_t)i * 25].path, NULL, &err) != QCAL_OK ||
		    preprocess_resize_window(&up, &src, 500, 375, 0, 0, 500, 375,
					     PREPROCESS_BICUBIC, &scratch, &err) != QCAL_OK) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		snprintf(out, sizeof(out), "%s/%04d.jpg", dir, i);
		write_jpeg(out, &up);
	}
	if (dataset_open(&big, dir, NULL, &err) != QCAL_OK) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	printf("%zu JPEGs of 500x375 -> Resize(256) bilinear -> CenterCrop(224):\n", big.count);
	j = (struct job){ &big, 224, 1 };
	best_of("decode only, 1 thread", repeats, job_decode, &j);
	best_of("loader: decode+resize+crop+normalise, 1 worker", repeats, job_loader, &j);
	j.workers = 2;
	best_of("loader: decode+resize+crop+normalise, 2 workers", repeats, job_loader, &j);
	dataset_free(&big);
	test_rmtree(dir);
	image_free(&src);
	image_free(&up);
	preprocess_scratch_free(&scratch);
	dataset_free(&ds);
	return 0;
}
