/*
 * libFuzzer harness over the in-memory decoder (PNG and JPEG), and over
 * the resizer for whatever decodes: every input must either decode to an
 * image of the size it reports or fail with a one-line message naming the
 * input; never crash, leak, read out of bounds or hit undefined behaviour
 * (built with -fsanitize=fuzzer,address,undefined by run_fuzz.sh).
 * Limits are lowered so a tiny input claiming a huge image fails fast
 * instead of timing out.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "datasets/image.h"
#include "datasets/preprocess.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_decode_options opt = {
		.max_pixels = 1u << 22,
		.max_jpeg_memory = (size_t)256 << 20,
		.max_jpeg_scans = 500,
	};
	struct image_u8 img = { 0 }, out = { 0 };
	struct preprocess_scratch scratch = { 0 };
	struct preprocess_options pre;
	struct qcal_err err;
	unsigned sum = 0;

	qcal_err_clear(&err);
	if (image_decode_mem(&img, data, size, "fuzz-input", &opt, &err) != QCAL_OK) {
		if (!strstr(err.msg, "fuzz-input") || strchr(err.msg, '\n') || img.w || img.h)
			__builtin_trap();
		image_free(&img);
		return 0;
	}
	if (img.w < 1 || img.h < 1 || (size_t)img.w * img.h * 3 > img.cap)
		__builtin_trap();
	for (size_t i = 0; i < (size_t)img.w * img.h * 3; i++)
		sum += img.data[i]; /* every byte written (ASan: in bounds) */
	/* Both interpolations, small crops of odd sizes. */
	preprocess_options_init(&pre, 1 + (int)(sum % 23), NULL, NULL);
	pre.interp = sum & 1 ? PREPROCESS_BICUBIC : PREPROCESS_BILINEAR;
	/* Only an absurd aspect ratio may fail (ERANGE, with a message). */
	qcal_err_clear(&err);
	enum qcal_status st = preprocess_geometry(&out, &img, &pre, &scratch, &err);
	if (st == QCAL_OK ? out.w != pre.size || out.h != pre.size
			  : st != QCAL_ERANGE || !err.msg[0] || strchr(err.msg, '\n'))
		__builtin_trap();
	image_free(&out);
	image_free(&img);
	preprocess_scratch_free(&scratch);
	return 0;
}
