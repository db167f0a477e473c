/*
 * Evaluation preprocessing, exactly torchvision's eval transform on a PIL
 * image: Resize(resize_size) -> CenterCrop(size) -> ToTensor -> Normalize,
 * except that an image already size x size goes straight through (how the
 * CIFAR models were trained and evaluated).
 *
 * Resize re-implements Pillow's separable resampler (Resample.c) to the
 * bit: triangle (bilinear) or Keys a = -0.5 (bicubic) kernel, support
 * stretched by the downscale factor (antialias), double weights normalised
 * and rounded to 22-bit fixed point, horizontal then vertical pass through
 * an 8-bit intermediate.  Defaults: resize_size = round(size / 0.875),
 * bilinear; CenterCrop offsets use Python's round-half-to-even.
 * Normalisation is a per-channel table computed in float32 as PyTorch does
 * (bit-exact), or the J5 recipe's folded (p - 128) / 128.
 */
#ifndef QCAL_DATASETS_PREPROCESS_H
#define QCAL_DATASETS_PREPROCESS_H

#include <stdint.h>

#include "core/status.h"
#include "datasets/image.h"

enum preprocess_interp {
	PREPROCESS_BILINEAR = 0, /* PIL.Image.BILINEAR, torchvision's default */
	PREPROCESS_BICUBIC,      /* PIL.Image.BICUBIC */
};

enum preprocess_norm {
	PREPROCESS_NORM_MEAN_STD = 0, /* (p/255 - mean[c]) / std[c] */
	PREPROCESS_NORM_FOLDED,       /* (p - 128) / 128: mean/std folded into the model */
};

struct preprocess_options {
	int size;                    /* model input side (the crop), e.g. 224 */
	int resize_size;             /* shorter side before the crop; 0 = default */
	enum preprocess_interp interp;
	enum preprocess_norm norm;
	float mean[3], std[3];       /* model card values, on [0, 1] pixels */
};

/* Fill o for a model of input side size with the given mean/std (copied;
 * NULL gives mean 0, std 1) and the defaults above. */
void preprocess_options_init(struct preprocess_options *o, int size,
			     const float *mean, const float *std);

/* round(size / 0.875), torchvision's resize-to-crop ratio. */
int preprocess_default_resize_size(int size);

/* Check sizes (1..65535, resize_size >= size) and finite, positive std. */
enum qcal_status preprocess_validate(const struct preprocess_options *o,
				     struct qcal_err *err);

/* "bilinear" / "bicubic" <-> enum. */
const char *preprocess_interp_name(enum preprocess_interp interp);
enum qcal_status preprocess_interp_parse(const char *name,
					 enum preprocess_interp *interp,
					 struct qcal_err *err);

/* Largest side a resize may produce (only the crop window is computed, so
 * this bounds coordinates, not memory). */
#define PREPROCESS_MAX_SIDE (1 << 28)

/*
 * Output size of torchvision's Resize(resize_size) on an h x w image:
 * shorter side = resize_size, longer = int(resize_size * long / short).
 * QCAL_ERANGE when the longer side would exceed PREPROCESS_MAX_SIDE (an
 * absurd aspect ratio).
 */
enum qcal_status preprocess_resized_dims(int h, int w, int resize_size, int *out_h,
					 int *out_w, struct qcal_err *err);

/* Top-left corner of torchvision's CenterCrop(crop) in an h x w image
 * (h, w >= crop). */
void preprocess_center_crop_offsets(int h, int w, int crop, int *top, int *left);

/* Scratch memory for resizing, one per thread; zero-initialise. */
struct preprocess_scratch {
	double *kk;        /* raw weights, then reused as int32 fixed point */
	int *bounds;
	uint8_t *tmp;      /* horizontal pass output */
	int32_t *acc;      /* vertical pass accumulators, one output row */
	size_t kk_cap, bounds_cap, tmp_cap, acc_cap;
};

void preprocess_scratch_free(struct preprocess_scratch *s);

/*
 * PIL's Image.resize((out_w, out_h), interp) of an RGB image, restricted to
 * the window [x0, x0 + out->w) x [y0, y0 + out->h) of the full out_w x out_h
 * result (pass 0, 0, out_w, out_h for the whole image).  Computing only the
 * window gives the same bytes as resizing everything and cropping, because
 * each output pixel has its own weights.  out is resized with image_reserve.
 * Sides up to PREPROCESS_MAX_SIDE.
 */
enum qcal_status preprocess_resize_window(struct image_u8 *out,
					  const struct image_u8 *in,
					  int out_w, int out_h, int x0, int y0,
					  int win_w, int win_h,
					  enum preprocess_interp interp,
					  struct preprocess_scratch *s,
					  struct qcal_err *err);

/* The geometry of the eval transform: in -> size x size RGB in out (a copy
 * when in is already size x size). */
enum qcal_status preprocess_geometry(struct image_u8 *out, const struct image_u8 *in,
				     const struct preprocess_options *o,
				     struct preprocess_scratch *s,
				     struct qcal_err *err);

/* Normalised float32 value of every 8-bit sample, per channel. */
struct preprocess_lut {
	float v[3][256];
};

void preprocess_lut_init(struct preprocess_lut *lut, const struct preprocess_options *o);

/* HWC uint8 (h, w, 3) -> CHW float32 (3, h, w) through the table. */
void preprocess_normalize(float *out, const uint8_t *hwc, int h, int w,
			  const struct preprocess_lut *lut);

#endif
