/*
 * PNG decoding through libpng, to the RGB pixels of Pillow's
 * Image.open(f).convert("RGB").  libpng reports fatal errors by longjmp;
 * everything cleanup needs lives in a struct png_job owned by the caller
 * of the function that calls setjmp, so nothing it reads is an
 * indeterminate local (C17 7.13.2.1).
 *
 * Strict: every libpng warning and "benign" error is fatal, a CRC mismatch
 * in any chunk is fatal, the file must reach IEND, and a palette index past
 * the palette is fatal (Pillow would show a grey ramp entry).  Ancillary
 * chunks (gAMA, iCCP, tRNS, text, ...) are skipped unparsed: none changes
 * Pillow's RGB pixels, and parsing them only adds ways to reject a valid
 * image over metadata.
 */
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/image_codec.h"

struct png_job {
	const uint8_t *data;
	size_t size, pos;
	const char *name;
	char msg[256];       /* libpng's error or warning text */
	png_structp png;
	png_infop info;
	uint8_t *raw;        /* one row, or the whole image when interlaced */
	png_bytep *rows;     /* row pointers into raw (interlaced only) */
};

static void png_job_read(png_structp png, png_bytep out, size_t n)
{
	struct png_job *job = png_get_io_ptr(png);

	if (n > job->size - job->pos) {
		snprintf(job->msg, sizeof(job->msg),
			 "truncated file (%zu bytes wanted at offset %zu of %zu)",
			 n, job->pos, job->size);
		longjmp(png_jmpbuf(png), 1);
	}
	memcpy(out, job->data + job->pos, n);
	job->pos += n;
}

static void png_job_error(png_structp png, png_const_charp msg)
{
	struct png_job *job = png_get_error_ptr(png);

	snprintf(job->msg, sizeof(job->msg), "%s", msg);
	longjmp(png_jmpbuf(png), 1);
}

/* A warning means libpng is about to guess or drop something: refuse. */
static void png_job_warning(png_structp png, png_const_charp msg)
{
	struct png_job *job = png_get_error_ptr(png);

	snprintf(job->msg, sizeof(job->msg), "%s", msg);
	longjmp(png_jmpbuf(png), 1);
}

/*
 * One decoded row (after libpng's expansion of 1/2/4-bit grey to 8 bits and
 * unpacking of 1/2/4-bit palette indices to bytes) to RGB, as Pillow's
 * unpackers and convert("RGB") do.  Returns the first bad palette index, or
 * -1.
 */
static int png_row_to_rgb(uint8_t *out, const uint8_t *in, int w, int color_type,
			  int bit_depth, const png_color *palette, int num_palette)
{
	int x;

	switch (color_type) {
	case PNG_COLOR_TYPE_GRAY:
		if (bit_depth == 16) {
			/* Pillow opens 16-bit grey as mode "I"; I -> RGB clips. */
			for (x = 0; x < w; x++) {
				unsigned v = (unsigned)in[2 * x] << 8 | in[2 * x + 1];
				uint8_t c = v > 255 ? 255 : (uint8_t)v;
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = c;
			}
		} else {
			for (x = 0; x < w; x++)
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[x];
		}
		break;
	case PNG_COLOR_TYPE_GRAY_ALPHA: {
		/* 8-bit: LA; 16-bit: "LA;16B" unpacks the high bytes. */
		int step = bit_depth == 16 ? 4 : 2;
		for (x = 0; x < w; x++)
			out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = in[step * x];
		break;
	}
	case PNG_COLOR_TYPE_RGB:
	case PNG_COLOR_TYPE_RGB_ALPHA: {
		int bytes = bit_depth == 16 ? 2 : 1;
		int step = (color_type == PNG_COLOR_TYPE_RGB ? 3 : 4) * bytes;
		for (x = 0; x < w; x++) {
			out[3 * x] = in[step * x];
			out[3 * x + 1] = in[step * x + bytes];
			out[3 * x + 2] = in[step * x + 2 * bytes];
		}
		break;
	}
	case PNG_COLOR_TYPE_PALETTE:
		for (x = 0; x < w; x++) {
			int i = in[x];
			if (i >= num_palette)
				return i;
			out[3 * x] = palette[i].red;
			out[3 * x + 1] = palette[i].green;
			out[3 * x + 2] = palette[i].blue;
		}
		break;
	default:
		break;
	}
	return -1;
}

/* Everything between setjmp and the end of the file; job survives a jump. */
static enum qcal_status png_job_run(struct png_job *job, struct image_u8 *img,
				    const struct image_limits *lim,
				    struct qcal_err *err)
{
	static const png_byte skip_trns[] = { 't', 'R', 'N', 'S', '\0' };
	png_uint_32 w, h;
	int bit_depth, color_type, interlace, passes, num_palette = 0;
	png_colorp palette = NULL;
	size_t rowbytes;
	enum qcal_status st;

	if (setjmp(png_jmpbuf(job->png)))
		return qcal_err_set(err, QCAL_EFORMAT, "%s: corrupt PNG: %s", job->name,
				    job->msg);

	png_set_read_fn(job->png, job, png_job_read);
	png_set_crc_action(job->png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
	png_set_benign_errors(job->png, 0);
	/* Skip every ancillary chunk, tRNS included (see the file comment). */
	png_set_keep_unknown_chunks(job->png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
	png_set_keep_unknown_chunks(job->png, PNG_HANDLE_CHUNK_NEVER, skip_trns, 1);

	png_read_info(job->png, job->info);
	png_get_IHDR(job->png, job->info, &w, &h, &bit_depth, &color_type, &interlace,
		     NULL, NULL);
	if (w > 0x7fffffff || h > 0x7fffffff)
		return qcal_err_set(err, QCAL_ERANGE, "%s: PNG size %lux%lu is out of range",
				    job->name, (unsigned long)w, (unsigned long)h);
	st = image_reserve(img, (int)h, (int)w, lim->max_pixels, job->name, err);
	if (st != QCAL_OK)
		return st;

	if (color_type == PNG_COLOR_TYPE_PALETTE) {
		if (!png_get_PLTE(job->png, job->info, &palette, &num_palette))
			return qcal_err_set(err, QCAL_EFORMAT,
					    "%s: corrupt PNG: palette image without PLTE",
					    job->name);
		if (bit_depth < 8)
			png_set_packing(job->png);
	} else if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) {
		png_set_expand_gray_1_2_4_to_8(job->png);
	}
	passes = png_set_interlace_handling(job->png);
	png_read_update_info(job->png, job->info);
	rowbytes = png_get_rowbytes(job->png, job->info);
	if (rowbytes < (size_t)w * (bit_depth == 16 ? 2 : 1))
		return qcal_err_set(err, QCAL_EFORMAT, "%s: corrupt PNG: row of %zu bytes",
				    job->name, rowbytes);

	if (passes == 1) {
		job->raw = malloc(rowbytes);
		if (!job->raw)
			return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", job->name);
		for (png_uint_32 y = 0; y < h; y++) {
			png_read_row(job->png, job->raw, NULL);
			int bad = png_row_to_rgb(img->data + (size_t)y * w * 3, job->raw, (int)w,
						 color_type, bit_depth, palette, num_palette);
			if (bad >= 0)
				goto bad_index;
		}
	} else {
		/* Adam7 fills each row over seven passes: keep the whole image. */
		if (rowbytes > SIZE_MAX / h)
			return qcal_err_set(err, QCAL_ERANGE, "%s: PNG too large", job->name);
		job->raw = malloc(rowbytes * h);
		job->rows = malloc(h * sizeof(*job->rows));
		if (!job->raw || !job->rows)
			return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", job->name);
		for (png_uint_32 y = 0; y < h; y++)
			job->rows[y] = job->raw + (size_t)y * rowbytes;
		png_read_image(job->png, job->rows);
		for (png_uint_32 y = 0; y < h; y++) {
			int bad = png_row_to_rgb(img->data + (size_t)y * w * 3, job->rows[y],
						 (int)w, color_type, bit_depth, palette,
						 num_palette);
			if (bad >= 0)
				goto bad_index;
		}
	}
	/* Reads the remaining chunks through IEND, checking their CRCs. */
	png_read_end(job->png, NULL);
	return QCAL_OK;

bad_index:
	return qcal_err_set(err, QCAL_EFORMAT,
			    "%s: corrupt PNG: palette index beyond the %d-entry palette",
			    job->name, num_palette);
}

enum qcal_status image_decode_png(struct image_u8 *img, const uint8_t *data,
				  size_t size, const char *name,
				  const struct image_limits *lim,
				  struct qcal_err *err)
{
	struct png_job job = { .data = data, .size = size, .name = name };
	enum qcal_status st;

	job.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &job, png_job_error,
					 png_job_warning);
	if (!job.png)
		return qcal_err_set(err, QCAL_ENOMEM, "%s: cannot create a PNG reader", name);
	job.info = png_create_info_struct(job.png);
	if (!job.info) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: cannot create a PNG reader", name);
		goto out_destroy_reader;
	}
	st = png_job_run(&job, img, lim, err);
out_destroy_reader:
	png_destroy_read_struct(&job.png, job.info ? &job.info : NULL, NULL);
	free(job.raw);
	free(job.rows);
	if (st != QCAL_OK)
		img->h = img->w = 0;
	return st;
}
