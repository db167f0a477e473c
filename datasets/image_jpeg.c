/*
 * JPEG decoding through libjpeg-turbo with its default settings (islow DCT,
 * fancy upsampling, block smoothing), as Pillow uses, so the pixels equal
 * Image.open(f).convert("RGB"): grey replicated to RGB; 4-component files
 * (CMYK, or YCCK turned into CMYK by libjpeg) read with Adobe polarity, as
 * Pillow always does ("CMYK;I"), then Pillow's integer cmyk2rgb.
 *
 * Every libjpeg warning is fatal: libjpeg warns and fills with grey when
 * data is missing or corrupt.  That includes "extraneous bytes before
 * marker 0xd9": junk before EOI is harmless after a complete last scan,
 * but libjpeg reports a last scan that decoded garbage the same way.
 * Progressive scan counts and coefficient memory are bounded.  State that
 * must survive libjpeg's longjmp lives in a heap job struct.
 */
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* jpeglib.h needs size_t and FILE declared first. */
#include <jerror.h>
#include <jpeglib.h>

#include "datasets/image_codec.h"

struct jpeg_job {
	struct jpeg_error_mgr pub;  /* first: cinfo->err points here */
	jmp_buf jmp;
	struct jpeg_decompress_struct cinfo;
	struct jpeg_progress_mgr progress;
	bool created;
	const char *name;
	int max_scans;
	bool too_many_scans;
	char msg[JMSG_LENGTH_MAX];
	uint8_t *row;               /* one output row, grey or CMYK */
};

static void jpeg_job_error_exit(j_common_ptr cinfo)
{
	struct jpeg_job *job = (struct jpeg_job *)cinfo->err;

	(*cinfo->err->format_message)(cinfo, job->msg);
	longjmp(job->jmp, 1);
}

static void jpeg_job_emit_message(j_common_ptr cinfo, int level)
{
	struct jpeg_job *job = (struct jpeg_job *)cinfo->err;

	if (level >= 0)
		return; /* trace messages */
	(*cinfo->err->format_message)(cinfo, job->msg);
	longjmp(job->jmp, 1);
}

static void jpeg_job_progress(j_common_ptr cinfo)
{
	struct jpeg_job *job = (struct jpeg_job *)cinfo->err;
	struct jpeg_decompress_struct *d = (struct jpeg_decompress_struct *)cinfo;

	if (d->input_scan_number > job->max_scans) {
		job->too_many_scans = true;
		snprintf(job->msg, sizeof(job->msg), "more than %d scans", job->max_scans);
		longjmp(job->jmp, 1);
	}
}

/* Pillow's MULDIV255: a * b / 255 rounded, in integers. */
static inline int muldiv255(int a, int b)
{
	int t = a * b + 128;
	return ((t >> 8) + t) >> 8;
}

static inline uint8_t clip8(int v)
{
	return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* libjpeg CMYK samples, inverted as Pillow's "CMYK;I" unpacker does, then
 * Pillow's cmyk2rgb. */
static void cmyk_row_to_rgb(uint8_t *out, const uint8_t *in, int w)
{
	for (int x = 0; x < w; x++) {
		int nk = in[4 * x + 3]; /* 255 - (255 - k) */
		for (int c = 0; c < 3; c++)
			out[3 * x + c] = clip8(nk - muldiv255(255 - in[4 * x + c], nk));
	}
}

static enum qcal_status jpeg_job_run(struct jpeg_job *job, struct image_u8 *img,
				     const uint8_t *data, size_t size,
				     const struct image_limits *lim,
				     struct qcal_err *err)
{
	struct jpeg_decompress_struct *cinfo = &job->cinfo;
	enum qcal_status st;
	int comps;

	if (setjmp(job->jmp)) {
		int code = job->pub.msg_code;
		if (job->too_many_scans)
			return qcal_err_set(err, QCAL_ERANGE, "%s: JPEG with %s", job->name,
					    job->msg);
		/* libjpeg asks for a backing store when its memory cap is hit. */
		if (code == JERR_NO_BACKING_STORE || code == JERR_OUT_OF_MEMORY)
			return qcal_err_set(err, QCAL_ERANGE,
					    "%s: JPEG needs more than %zu bytes of decoder memory",
					    job->name, lim->max_jpeg_memory);
		if (code == JERR_BAD_PRECISION)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "%s: unsupported JPEG: %s (only 8-bit samples)",
					    job->name, job->msg);
		return qcal_err_set(err, QCAL_EFORMAT, "%s: corrupt JPEG: %s", job->name,
				    job->msg);
	}

	job->created = true; /* destroy is safe on a zeroed, half-created struct */
	jpeg_create_decompress(cinfo);
	cinfo->mem->max_memory_to_use = (long)(lim->max_jpeg_memory > 0x7fffffffL
						 ? 0x7fffffffL
						 : lim->max_jpeg_memory);
	job->progress.progress_monitor = jpeg_job_progress;
	cinfo->progress = &job->progress;
	jpeg_mem_src(cinfo, data, (unsigned long)size);
	jpeg_read_header(cinfo, TRUE);

	comps = cinfo->num_components;
	switch (cinfo->jpeg_color_space) {
	case JCS_GRAYSCALE:
		cinfo->out_color_space = JCS_GRAYSCALE;
		break;
	case JCS_YCbCr:
	case JCS_RGB:
		cinfo->out_color_space = JCS_RGB;
		break;
	case JCS_CMYK:
	case JCS_YCCK:
		cinfo->out_color_space = JCS_CMYK;
		break;
	default:
		return qcal_err_set(err, QCAL_EFORMAT,
				    "%s: JPEG with %d components in an unknown colour space is not supported",
				    job->name, comps);
	}
	st = image_reserve(img, (int)cinfo->image_height, (int)cinfo->image_width,
			   lim->max_pixels, job->name, err);
	if (st != QCAL_OK)
		return st;
	/* Multi-scan files keep every DCT coefficient until the last scan.
	 * Bound that here: libjpeg-turbo 2.1 ignores max_memory_to_use. */
	if (jpeg_has_multiple_scans(cinfo)) {
		size_t bytes = 0;
		for (int ci = 0; ci < comps; ci++) {
			const jpeg_component_info *c = &cinfo->comp_info[ci];
			size_t w = ((size_t)c->width_in_blocks + (size_t)c->h_samp_factor - 1) /
				   (size_t)c->h_samp_factor * (size_t)c->h_samp_factor;
			size_t h = ((size_t)c->height_in_blocks + (size_t)c->v_samp_factor - 1) /
				   (size_t)c->v_samp_factor * (size_t)c->v_samp_factor;
			bytes += w * h * sizeof(JBLOCK);
		}
		if (bytes > lim->max_jpeg_memory)
			return qcal_err_set(err, QCAL_ERANGE,
					    "%s: progressive JPEG needs %zu bytes of decoder memory, above the limit of %zu",
					    job->name, bytes, lim->max_jpeg_memory);
	}

	jpeg_start_decompress(cinfo);
	if ((int)cinfo->output_width != img->w || (int)cinfo->output_height != img->h ||
	    cinfo->output_components != (cinfo->out_color_space == JCS_RGB ? 3 :
					  cinfo->out_color_space == JCS_CMYK ? 4 : 1))
		return qcal_err_set(err, QCAL_EFORMAT, "%s: JPEG output geometry mismatch",
				    job->name);
	if (cinfo->out_color_space != JCS_RGB) {
		job->row = malloc((size_t)img->w * (size_t)cinfo->output_components);
		if (!job->row)
			return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", job->name);
	}
	while (cinfo->output_scanline < cinfo->output_height) {
		uint8_t *out = img->data + (size_t)cinfo->output_scanline * img->w * 3;
		JSAMPROW row = cinfo->out_color_space == JCS_RGB ? out : job->row;
		if (jpeg_read_scanlines(cinfo, &row, 1) != 1)
			return qcal_err_set(err, QCAL_EFORMAT, "%s: corrupt JPEG: no scanline",
					    job->name);
		if (cinfo->out_color_space == JCS_GRAYSCALE) {
			for (int x = 0; x < img->w; x++)
				out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = job->row[x];
		} else if (cinfo->out_color_space == JCS_CMYK) {
			cmyk_row_to_rgb(out, job->row, img->w);
		}
	}
	/* Reads up to EOI: a file cut after the last scanline still fails. */
	jpeg_finish_decompress(cinfo);
	return QCAL_OK;
}

enum qcal_status image_decode_jpeg(struct image_u8 *img, const uint8_t *data,
				   size_t size, const char *name,
				   const struct image_limits *lim,
				   struct qcal_err *err)
{
	struct jpeg_job *job = calloc(1, sizeof(*job));
	enum qcal_status st;

	if (!job)
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", name);
	job->name = name;
	job->max_scans = lim->max_jpeg_scans;
	job->cinfo.err = jpeg_std_error(&job->pub);
	job->pub.error_exit = jpeg_job_error_exit;
	job->pub.emit_message = jpeg_job_emit_message;
	st = jpeg_job_run(job, img, data, size, lim, err);
	if (job->created)
		jpeg_destroy_decompress(&job->cinfo);
	free(job->row);
	free(job);
	if (st != QCAL_OK)
		img->h = img->w = 0;
	return st;
}
