/*
 * Image decoding: PNG (libpng) and JPEG (libjpeg-turbo) files or memory
 * buffers, chosen by magic bytes, to 8-bit RGB, height x width x 3.
 *
 * The pixels are those of `PIL.Image.open(f).convert("RGB")`, what
 * torchvision's ImageFolder feeds a model: alpha dropped (not composited),
 * 16-bit samples reduced to their high byte except 16-bit grey, which
 * Pillow clips at 255; palettes looked up; CMYK/YCCK JPEGs read with Adobe
 * polarity and converted with Pillow's integer formula.
 *
 * Decoding is strict: truncated or corrupt data, any libjpeg warning (which
 * libjpeg would paper over with grey), a CRC mismatch, a palette index past
 * the palette or a size beyond the limits is an error naming the file.
 */
#ifndef QCAL_DATASETS_IMAGE_H
#define QCAL_DATASETS_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/*
 * Pillow's decompression-bomb warning threshold (about 89.5 Mpixel, 268 MB
 * of RGB): larger images are refused unless the caller raises the limit.
 */
#define IMAGE_MAX_PIXELS_DEFAULT 89478485u
/* Files larger than this are refused before reading (1 GiB). */
#define IMAGE_MAX_FILE_BYTES_DEFAULT (1u << 30)

enum image_format {
	IMAGE_FORMAT_UNKNOWN = 0,
	IMAGE_FORMAT_PNG,
	IMAGE_FORMAT_JPEG,
	/* Recognised only to name them in errors; not decoded. */
	IMAGE_FORMAT_GIF,
	IMAGE_FORMAT_BMP,
	IMAGE_FORMAT_WEBP,
	IMAGE_FORMAT_TIFF,
	IMAGE_FORMAT_PNM,
};

/* An 8-bit RGB image; data holds h * w * 3 bytes (HWC).  cap is the size of
 * the allocation, so a decoder can reuse the buffer for the next image. */
struct image_u8 {
	uint8_t *data; /* (H, W, 3) owned */
	int h, w;
	size_t cap;    /* bytes allocated at data */
};

struct image_decode_options {
	size_t max_pixels;     /* 0 = IMAGE_MAX_PIXELS_DEFAULT */
	size_t max_file_bytes; /* 0 = IMAGE_MAX_FILE_BYTES_DEFAULT */
	/* Upper bound in bytes (0 = 2 GiB) on the coefficient buffers a
	 * progressive (multi-scan) JPEG needs: 128 bytes per 8x8 block and
	 * component, held until the last scan. */
	size_t max_jpeg_memory;
	/* Progressive JPEGs with more scans than this are refused (0 = 1000):
	 * thousands of tiny scans make decoding arbitrarily slow. */
	int max_jpeg_scans;
};

/* Format named by the first bytes of data (PNG signature, JPEG SOI, ...). */
enum image_format image_sniff(const void *data, size_t size);

/* Short name of a format ("PNG", "JPEG", "GIF", ...). */
const char *image_format_name(enum image_format format);

/*
 * Decode size bytes at data into img (its buffer is reused when large
 * enough, else reallocated; img must be zeroed or hold a previous result).
 * name is used in error messages only (the file's path).  opt may be NULL.
 * On failure img keeps its buffer but h = w = 0.
 */
enum qcal_status image_decode_mem(struct image_u8 *img, const void *data,
				  size_t size, const char *name,
				  const struct image_decode_options *opt,
				  struct qcal_err *err);

/*
 * Read a whole file into *buf (reallocated as needed; *cap is its size) and
 * set *size.  Refuses files above opt->max_file_bytes.  Errors name path.
 */
enum qcal_status image_read_file(const char *path, uint8_t **buf, size_t *cap,
				 size_t *size,
				 const struct image_decode_options *opt,
				 struct qcal_err *err);

/* image_read_file + image_decode_mem with a temporary buffer. */
enum qcal_status image_decode_file(struct image_u8 *img, const char *path,
				   const struct image_decode_options *opt,
				   struct qcal_err *err);

/*
 * Make sure img can hold h x w x 3 bytes and set its size.  Returns
 * QCAL_ERANGE if h * w exceeds max_pixels (0 = default), QCAL_ENOMEM if the
 * allocation fails.
 */
enum qcal_status image_reserve(struct image_u8 *img, int h, int w,
			       size_t max_pixels, const char *name,
			       struct qcal_err *err);

/* Release the pixel buffer and zero img.  NULL-safe. */
void image_free(struct image_u8 *img);

#endif
