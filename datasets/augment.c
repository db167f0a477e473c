/*
 * Random crop with padding and horizontal flip (see augment.h).  The padded
 * image is never built: each output pixel maps back to a source pixel (or
 * to zero padding) through the crop offset, the flip and the reflection.
 */
#include "datasets/augment.h"

#include <string.h>

#include "core/rng.h"
#include "datasets/dataset.h"

enum qcal_status augment_validate(const struct augment_options *o, int h, int w,
				  struct qcal_err *err)
{
	if (o->pad < 0 || o->pad > 1024)
		return qcal_err_set(err, QCAL_EINVAL, "augment: padding %d must be in 0..1024",
				    o->pad);
	if (o->pad_mode != AUGMENT_PAD_REFLECT && o->pad_mode != AUGMENT_PAD_ZERO)
		return qcal_err_set(err, QCAL_EINVAL, "augment: unknown padding mode %d",
				    (int)o->pad_mode);
	if (o->pad_mode == AUGMENT_PAD_REFLECT && (o->pad >= h || o->pad >= w))
		return qcal_err_set(err, QCAL_EINVAL,
				    "augment: reflect padding %d needs images larger than %d pixels, got %dx%d",
				    o->pad, o->pad, w, h);
	return QCAL_OK;
}

struct augment_draw augment_draw(const struct augment_options *o, uint64_t epoch,
				 uint64_t index)
{
	struct augment_draw d = { 0, 0, false };
	struct qcal_rng rng;

	qcal_rng_seed(&rng, dataset_stream_seed(o->seed, epoch, index));
	/* Always three draws in this order, so enabling one option does not
	 * change the other's values. */
	uint64_t top = qcal_rng_below(&rng, (uint64_t)(2 * o->pad + 1));
	uint64_t left = qcal_rng_below(&rng, (uint64_t)(2 * o->pad + 1));
	uint64_t coin = qcal_rng_u64(&rng) >> 63;
	d.top = (int)top;
	d.left = (int)left;
	d.flip = o->hflip && coin;
	return d;
}

/* Source index of padded coordinate i (0-based in the unpadded image) or -1
 * for zero padding. */
static inline int pad_index(int i, int n, enum augment_pad_mode mode)
{
	if (i >= 0 && i < n)
		return i;
	if (mode == AUGMENT_PAD_ZERO)
		return -1;
	return i < 0 ? -i : 2 * (n - 1) - i;
}

void augment_apply(uint8_t *out, const uint8_t *in, int h, int w,
		   const struct augment_options *o, const struct augment_draw *d)
{
	for (int y = 0; y < h; y++) {
		int sy = pad_index(y + d->top - o->pad, h, o->pad_mode);
		uint8_t *orow = out + (size_t)y * w * 3;
		if (sy < 0) {
			memset(orow, 0, (size_t)w * 3);
			continue;
		}
		const uint8_t *irow = in + (size_t)sy * w * 3;
		for (int x = 0; x < w; x++) {
			int cx = d->flip ? w - 1 - x : x;
			int sx = pad_index(cx + d->left - o->pad, w, o->pad_mode);
			if (sx < 0) {
				orow[3 * x] = orow[3 * x + 1] = orow[3 * x + 2] = 0;
			} else {
				orow[3 * x] = irow[3 * sx];
				orow[3 * x + 1] = irow[3 * sx + 1];
				orow[3 * x + 2] = irow[3 * sx + 2];
			}
		}
	}
}
