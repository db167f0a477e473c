/*
 * Prefetching batch loader: worker threads read, decode, resize/crop,
 * optionally augment and normalise the next batches while the caller's
 * model runs on the current one.
 *
 * Batch b always holds the images at epoch positions [b * batch,
 * (b + 1) * batch) and batches are handed out in order, so the output is
 * identical for any worker count; workers only change how soon it is ready.
 * Memory is a ring of prefetch + 1 batch buffers allocated at open.  A file
 * that cannot be decoded stops the epoch at its batch with an error naming
 * it, or with skip_bad is left out, counted and recorded.  Training opens
 * one loader per epoch (threads and buffers only) with augment, shuffle and
 * epoch set.  datasets/README.md shows the eval, calibration and QAT loops.
 */
#ifndef QCAL_DATASETS_LOADER_H
#define QCAL_DATASETS_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "datasets/augment.h"
#include "datasets/dataset.h"
#include "datasets/image.h"
#include "datasets/preprocess.h"

struct loader_options {
	int batch;                   /* images per batch, 1..65536 */
	int workers;                 /* decode threads, 1..64 */
	int prefetch;                /* batches prepared ahead (0 = workers + 1) */
	bool skip_bad;               /* skip undecodable files instead of failing */
	struct preprocess_options pre;
	const struct augment_options *augment; /* NULL: no augmentation (eval) */
	bool shuffle;                /* visit in dataset_epoch_order(shuffle_seed, epoch) */
	uint64_t shuffle_seed;
	uint64_t epoch;              /* selects the shuffle and the augmentation draws */
	size_t first_batch;          /* start the epoch here (resume); 0 = beginning */
	struct image_decode_options decode;
};

/* batch, workers and pre (copied), the rest default (no augmentation, no
 * shuffle, fail on bad files). */
void loader_options_init(struct loader_options *o, int batch, int workers,
			 const struct preprocess_options *pre);

/* One batch; valid until the next loader_next or loader_close. */
struct loader_batch {
	const float *images;   /* (count, 3, size, size) normalised */
	const int *labels;     /* (count) class index, -1 when unlabelled */
	const size_t *indices; /* (count) index of each image in ds->items */
	int count;             /* images here; 0 marks the end of the epoch */
	size_t number;         /* batch number within the epoch */
	int skipped;           /* files left out of this batch (skip_bad); a batch
				* whose every file was skipped is not delivered,
				* so loader_skipped() is the complete list */
};

/* A file left out under skip_bad. */
struct loader_skip {
	size_t index;          /* into ds->items */
	const char *path;      /* ds->items[index].path */
	char *message;         /* the decode error (owned by the loader) */
};

struct loader;

/*
 * Validate the options, allocate the ring and start the workers, which
 * begin decoding at once.  ds must outlive the loader and stay unchanged.
 * Errors: EINVAL for bad options (message names the option), EFORMAT for
 * an empty set, ENOMEM, EIO if a thread cannot start.
 */
enum qcal_status loader_open(struct loader **out, const struct dataset *ds,
			     const struct loader_options *opt,
			     struct qcal_err *err);

/*
 * Next batch in order, waiting for the workers if needed.  Returns QCAL_OK
 * with batch->count == 0 at the end of the epoch.  After an error every
 * later call returns the same error.  Gives back the previous batch's
 * buffer to the workers.
 */
enum qcal_status loader_next(struct loader *ld, struct loader_batch *batch,
			     struct qcal_err *err);

/* Images this epoch will visit (from first_batch on, before skipping). */
size_t loader_total(const struct loader *ld);

/* Batches in the whole epoch (ceil(images / batch)). */
size_t loader_batch_count(const struct loader *ld);

/* Files skipped so far, in delivery order; *n gets the count. */
const struct loader_skip *loader_skipped(const struct loader *ld, size_t *n);

/* Stop the workers (finishing the image each is on), join them and free
 * everything.  NULL-safe; fine to call before the epoch ends. */
void loader_close(struct loader *ld);

#endif
