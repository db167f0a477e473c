/*
 * Where a command's images come from: an image folder / list file (--data,
 * decoded and preprocessed by datasets/) or preprocessed tensors in HDF5
 * (--input, e.g. a reference.h5).  Both end up as an eval_next_fn yielding
 * normalised NCHW batches for the model at hand, with the normalisation the
 * model expects: (p/255 - mean)/std, or (p-128)/128 for folded models.
 */
#ifndef QCAL_TOOLS_SOURCE_H
#define QCAL_TOOLS_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "calib/evaluate.h"
#include "model/swin_model.h"

struct source_options {
	const char *data;        /* image folder or list file */
	const char *input;       /* HDF5 tensor file (alternative to data) */
	const char *dataset;     /* dataset name inside input [input] */
	int batch;
	int workers;             /* decode threads */
	long limit;              /* first N images (0 = all) */
	long sample;             /* seeded class-balanced N images (0 = all) */
	uint64_t seed;
	bool skip_bad;
	bool folded;             /* feed (p-128)/128 */
	const char *resize;      /* NULL, or "bilinear" / "bicubic" */
	int resize_size;         /* 0 = default */
};

struct source;

enum qcal_status source_open(struct source **out, const struct swin_config *cfg,
			     const struct source_options *opt, struct qcal_err *err);
void source_free(struct source *s);
/* Images the source will deliver (for progress bars). */
size_t source_count(const struct source *s);
/* Files skipped as unreadable so far (skip_bad). */
size_t source_skipped(const struct source *s);
/* The eval_next_fn; user = the source. */
enum qcal_status source_next(void *user, struct eval_batch *b, struct qcal_err *err);
/* A description for reports ("data/cifar10-sample (300 images)"). */
const char *source_describe(const struct source *s);

#endif
