/*
 * Training augmentation: torchvision's RandomCrop(size, padding=pad,
 * padding_mode=reflect|constant 0) followed by RandomHorizontalFlip(0.5),
 * the recipe the shared micro model was trained with (reflect pad 4).
 *
 * Each image's random choices come from its own stream, seeded by
 * (seed, epoch, dataset index) through dataset_stream_seed, and nothing
 * else: the same image in the same epoch gets the same crop and flip
 * whatever the batch size, the worker count or where a run was resumed.
 * (The draws are qcal's own, not torch's generator: a run reproduces
 * itself, not a PyTorch run.)
 */
#ifndef QCAL_DATASETS_AUGMENT_H
#define QCAL_DATASETS_AUGMENT_H

#include <stdbool.h>
#include <stdint.h>

#include "core/status.h"

enum augment_pad_mode {
	AUGMENT_PAD_REFLECT = 0, /* numpy/torch "reflect": edge not repeated */
	AUGMENT_PAD_ZERO,        /* constant 0 (black) pixels */
};

struct augment_options {
	int pad;                        /* random-crop padding per side; 0 = no crop */
	enum augment_pad_mode pad_mode;
	bool hflip;                     /* horizontal flip with probability 0.5 */
	uint64_t seed;
};

/* The random choices for one image. */
struct augment_draw {
	int top, left; /* crop corner in the padded image, 0..2 * pad */
	bool flip;
};

/* Check pad (0..1024; reflect needs pad < the image side h, w). */
enum qcal_status augment_validate(const struct augment_options *o, int h, int w,
				  struct qcal_err *err);

/* Draws for image `index` (its dataset index) in `epoch`. */
struct augment_draw augment_draw(const struct augment_options *o, uint64_t epoch,
				 uint64_t index);

/*
 * out (h, w, 3) = the h x w crop at (top, left) of in padded by o->pad on
 * every side, mirrored left-right when d->flip.  in and out must not
 * overlap; o must have passed augment_validate for h, w.
 */
void augment_apply(uint8_t *out, const uint8_t *in, int h, int w,
		   const struct augment_options *o, const struct augment_draw *d);

#endif
