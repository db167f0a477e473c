/*
 * Format sniffing, whole-file reading and the pixel buffer (see image.h).
 *
 * Files are read into memory first and decoded from there, so the file and
 * the memory paths are one code path (the one the fuzzer exercises), and a
 * loader thread can reuse one read buffer and one pixel buffer for every
 * image it handles.  The codecs live in image_png.c and image_jpeg.c.
 */
#include "datasets/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/image_codec.h"

enum image_format image_sniff(const void *data, size_t size)
{
	static const uint8_t png_sig[8] = { 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n' };
	const uint8_t *d = data;

	if (size >= 8 && memcmp(d, png_sig, 8) == 0)
		return IMAGE_FORMAT_PNG;
	if (size >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff)
		return IMAGE_FORMAT_JPEG;
	if (size >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0))
		return IMAGE_FORMAT_GIF;
	if (size >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0)
		return IMAGE_FORMAT_WEBP;
	if (size >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0))
		return IMAGE_FORMAT_TIFF;
	if (size >= 14 && d[0] == 'B' && d[1] == 'M')
		return IMAGE_FORMAT_BMP;
	if (size >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7' &&
	    (d[2] == ' ' || d[2] == '\n' || d[2] == '\r' || d[2] == '\t'))
		return IMAGE_FORMAT_PNM;
	return IMAGE_FORMAT_UNKNOWN;
}

const char *image_format_name(enum image_format format)
{
	switch (format) {
	case IMAGE_FORMAT_PNG: return "PNG";
	case IMAGE_FORMAT_JPEG: return "JPEG";
	case IMAGE_FORMAT_GIF: return "GIF";
	case IMAGE_FORMAT_BMP: return "BMP";
	case IMAGE_FORMAT_WEBP: return "WebP";
	case IMAGE_FORMAT_TIFF: return "TIFF";
	case IMAGE_FORMAT_PNM: return "PNM";
	case IMAGE_FORMAT_UNKNOWN: break;
	}
	return "unknown";
}

enum qcal_status image_reserve(struct image_u8 *img, int h, int w,
			       size_t max_pixels, const char *name,
			       struct qcal_err *err)
{
	size_t pixels, bytes;

	if (max_pixels == 0)
		max_pixels = IMAGE_MAX_PIXELS_DEFAULT;
	img->h = img->w = 0;
	if (h < 1 || w < 1)
		return qcal_err_set(err, QCAL_EFORMAT, "%s: image size %dx%d is empty",
				    name, w, h);
	pixels = (size_t)h * (size_t)w;
	if (pixels / (size_t)w != (size_t)h || pixels > max_pixels ||
	    pixels > SIZE_MAX / 3)
		return qcal_err_set(err, QCAL_ERANGE,
				    "%s: image size %dx%d exceeds the limit of %zu pixels",
				    name, w, h, max_pixels);
	bytes = pixels * 3;
	if (bytes > img->cap) {
		uint8_t *p = realloc(img->data, bytes);
		if (!p)
			return qcal_err_set(err, QCAL_ENOMEM,
					    "%s: out of memory for a %dx%d image", name, w, h);
		img->data = p;
		img->cap = bytes;
	}
	img->h = h;
	img->w = w;
	return QCAL_OK;
}

void image_free(struct image_u8 *img)
{
	if (!img)
		return;
	free(img->data);
	memset(img, 0, sizeof(*img));
}

static void resolve_limits(struct image_limits *lim,
			   const struct image_decode_options *opt)
{
	lim->max_pixels = opt && opt->max_pixels ? opt->max_pixels
						 : IMAGE_MAX_PIXELS_DEFAULT;
	lim->max_jpeg_memory = opt && opt->max_jpeg_memory ? opt->max_jpeg_memory
							   : (size_t)2 << 30;
	lim->max_jpeg_scans = opt && opt->max_jpeg_scans > 0 ? opt->max_jpeg_scans : 1000;
}

enum qcal_status image_decode_mem(struct image_u8 *img, const void *data,
				  size_t size, const char *name,
				  const struct image_decode_options *opt,
				  struct qcal_err *err)
{
	struct image_limits lim;
	enum image_format format;

	img->h = img->w = 0;
	if (!name)
		name = "<memory>";
	resolve_limits(&lim, opt);
	if (size == 0)
		return qcal_err_set(err, QCAL_EFORMAT, "%s: empty file, expected a PNG or JPEG image",
				    name);
	format = image_sniff(data, size);
	switch (format) {
	case IMAGE_FORMAT_PNG:
		return image_decode_png(img, data, size, name, &lim, err);
	case IMAGE_FORMAT_JPEG:
		return image_decode_jpeg(img, data, size, name, &lim, err);
	case IMAGE_FORMAT_UNKNOWN:
		return qcal_err_set(err, QCAL_EFORMAT,
				    "%s: not a PNG or JPEG image (unrecognised first bytes)", name);
	default:
		return qcal_err_set(err, QCAL_EFORMAT,
				    "%s: %s images are not supported (only PNG and JPEG)",
				    name, image_format_name(format));
	}
}

enum qcal_status image_read_file(const char *path, uint8_t **buf, size_t *cap,
				 size_t *size,
				 const struct image_decode_options *opt,
				 struct qcal_err *err)
{
	size_t max_bytes = opt && opt->max_file_bytes ? opt->max_file_bytes
						      : IMAGE_MAX_FILE_BYTES_DEFAULT;
	enum qcal_status st = QCAL_OK;
	struct stat sb;
	size_t want, got = 0;
	int fd;

	*size = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return qcal_err_set(err, errno == ENOENT ? QCAL_ENOENT : QCAL_EIO,
				    "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0) {
		st = qcal_err_set(err, QCAL_EIO, "%s: cannot stat: %s", path, strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(sb.st_mode)) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: not a regular file", path);
		goto out_close;
	}
	if ((uintmax_t)sb.st_size > max_bytes) {
		st = qcal_err_set(err, QCAL_ERANGE, "%s: file of %jd bytes exceeds the limit of %zu",
				  path, (intmax_t)sb.st_size, max_bytes);
		goto out_close;
	}
	want = (size_t)sb.st_size;
	/* One spare byte: reading it proves the file did not grow under us. */
	if (want + 1 > *cap) {
		uint8_t *p = realloc(*buf, want + 1);
		if (!p) {
			st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory reading %zu bytes",
					  path, want);
			goto out_close;
		}
		*buf = p;
		*cap = want + 1;
	}
	while (got < want + 1) {
		ssize_t n = read(fd, *buf + got, want + 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			st = qcal_err_set(err, QCAL_EIO, "%s: read failed: %s", path, strerror(errno));
			goto out_close;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got != want) {
		st = qcal_err_set(err, QCAL_EIO, "%s: file changed size while being read", path);
		goto out_close;
	}
	*size = got;
out_close:
	close(fd);
	return st;
}

enum qcal_status image_decode_file(struct image_u8 *img, const char *path,
				   const struct image_decode_options *opt,
				   struct qcal_err *err)
{
	uint8_t *buf = NULL;
	size_t cap = 0, size;
	enum qcal_status st;

	img->h = img->w = 0;
	st = image_read_file(path, &buf, &cap, &size, opt, err);
	if (st == QCAL_OK)
		st = image_decode_mem(img, buf, size, path, opt, err);
	free(buf);
	return st;
}
