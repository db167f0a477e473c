/*
 * A batch source over tensors already in memory or in an HDF5 file (a
 * dataset of normalised NCHW images, optionally "labels"): what `qcal eval
 * --input` and the tests use when images are already preprocessed, e.g.
 * the `input` of shared/models/<m>/reference.h5.
 */
#ifndef QCAL_CALIB_TENSOR_SOURCE_H
#define QCAL_CALIB_TENSOR_SOURCE_H

#include "calib/evaluate.h"
#include "model/swin_config.h"

struct tensor_source {
	float *images;     /* (n, C, H, W) owned */
	int *labels;       /* (n) owned, -1 when absent */
	int n, next, batch;
	size_t per_image;
};

/*
 * Read dataset `name` (and "labels" if present) from path; the shape must be
 * (n, cfg->in_chans, cfg->img_size, cfg->img_size).
 */
enum qcal_status tensor_source_open_h5(struct tensor_source *s, const char *path,
				       const char *name, const struct swin_config *cfg,
				       int batch, struct qcal_err *err);
void tensor_source_free(struct tensor_source *s);
void tensor_source_rewind(struct tensor_source *s);

/* eval_next_fn over a tensor_source (user = the source). */
enum qcal_status tensor_source_next(void *user, struct eval_batch *b,
				    struct qcal_err *err);

#endif
