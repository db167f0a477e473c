/*
 * Private interface between image.c (format sniffing, file reading, buffer
 * management) and the two codec files.  Each codec decodes one complete
 * in-memory file into an image_u8 whose buffer it sizes with image_reserve,
 * and reports every failure itself with the file's name.  Limits arrive
 * already resolved (no zero "use the default" values).
 */
#ifndef QCAL_DATASETS_IMAGE_CODEC_H
#define QCAL_DATASETS_IMAGE_CODEC_H

#include "datasets/image.h"

struct image_limits {
	size_t max_pixels;
	size_t max_jpeg_memory;
	int max_jpeg_scans;
};

enum qcal_status image_decode_png(struct image_u8 *img, const uint8_t *data,
				  size_t size, const char *name,
				  const struct image_limits *lim,
				  struct qcal_err *err);

enum qcal_status image_decode_jpeg(struct image_u8 *img, const uint8_t *data,
				   size_t size, const char *name,
				   const struct image_limits *lim,
				   struct qcal_err *err);

#endif
