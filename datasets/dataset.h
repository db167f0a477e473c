/*
 * Image sets: the ordered list of (file, label) that evaluation,
 * calibration or training reads, from class folders (torchvision
 * ImageFolder's exact order and labels), a list file of "path label" lines
 * (ImageNet-val style), or an unlabelled folder (label -1, calibration).
 *
 * Files count as images by extension as in ImageFolder (.jpg .jpeg .png
 * .ppm .bmp .pgm .tif .tiff .webp, any case), so indices match PyTorch's
 * even when a file later fails to decode.  Names sort by bytes (strcmp),
 * Python's order for UTF-8 names.  Selection (dataset_limit, the seeded
 * class-balanced dataset_sample) edits the list in place and keeps dataset
 * order, so both compose deterministically; training order comes from
 * dataset_epoch_order, a permutation fixed by (seed, epoch).
 */
#ifndef QCAL_DATASETS_DATASET_H
#define QCAL_DATASETS_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

enum dataset_layout {
	DATASET_AUTO = 0,      /* a file: list; a folder: class folders if it has
				* subfolders, unlabelled if only images */
	DATASET_CLASS_FOLDERS,
	DATASET_LIST,
	DATASET_UNLABELLED,
};

struct dataset_item {
	const char *path; /* openable path (root joined), in the dataset's pool */
	int label;        /* class index, -1 when unlabelled */
};

struct dataset {
	enum dataset_layout layout; /* as resolved from DATASET_AUTO */
	char *source;               /* the folder or list file opened (owned) */
	size_t count;
	struct dataset_item *items; /* (count) owned */
	int num_classes;            /* folders: class folders; lists: 1 + largest
				     * label; unlabelled: 0 */
	char **class_names;         /* (num_classes) for class folders, else NULL */
	size_t max_label_line;      /* list files: line of the largest label */
	char *pool;                 /* path strings (owned) */
};

struct dataset_options {
	enum dataset_layout layout; /* DATASET_AUTO unless forced */
	const char *root;           /* list files: base folder for relative paths
				     * (NULL: the list file's folder) */
};

/* Layout name ("class folders", "list file", "unlabelled"). */
const char *dataset_layout_name(enum dataset_layout layout);

/*
 * Open an image set at path (opt may be NULL).  Class folders are
 * root/<class>/.../<file>: label = index of <class> among root's sorted
 * subfolders; within a class, directories in order of their full path and
 * files sorted inside each (sorted(os.walk), as ImageFolder).  A list file
 * has one "relative/path label" per line, or "relative/path" on every line
 * for an unlabelled list; the label is the last token if it is an integer,
 * so paths may contain spaces; blank lines and '#' lines are skipped.
 * Errors, each naming the
 * path (and for lists the line): missing or unreadable path/folder
 * (ENOENT/EIO), no image files or an empty class folder (EFORMAT), a list
 * line without a valid label or naming a missing file (EFORMAT/ENOENT), a
 * folder holding both images and subfolders under DATASET_AUTO (EFORMAT).
 * On failure ds is left empty (safe to dataset_free).
 */
enum qcal_status dataset_open(struct dataset *ds, const char *path,
			      const struct dataset_options *opt,
			      struct qcal_err *err);

/* Release everything ds owns and zero it.  NULL-safe. */
void dataset_free(struct dataset *ds);

/*
 * Check that the labels fit a model with num_classes outputs: more class
 * folders, or a list label >= num_classes, is QCAL_ERANGE with a message
 * naming the folder or the list line.  Unlabelled sets always pass.
 */
enum qcal_status dataset_check_classes(const struct dataset *ds, int num_classes,
				       struct qcal_err *err);

/* Keep the first n items (no-op when n == 0 or n >= count). */
void dataset_limit(struct dataset *ds, size_t n);

/*
 * Keep a seeded class-balanced subset of n items (no-op when n == 0 or
 * n >= count): every class gets floor(n / K) items (K = classes present),
 * the remaining n mod K go to classes chosen by the seed, a class with too
 * few images gives its share to the others, and the items of each class are
 * drawn uniformly without replacement.  Unlabelled sets are one class.
 * The kept items stay in dataset order.  Deterministic given (dataset,
 * n, seed).  Fails only with QCAL_ENOMEM.
 */
enum qcal_status dataset_sample(struct dataset *ds, size_t n, uint64_t seed,
				struct qcal_err *err);

/* Items per label into counts[0..num_classes) (unlabelled items ignored). */
void dataset_class_counts(const struct dataset *ds, size_t *counts);

/*
 * order[0..n) = a permutation of 0..n-1 that depends only on (n, seed,
 * epoch): the training order of one epoch.
 */
void dataset_epoch_order(size_t *order, size_t n, uint64_t seed, uint64_t epoch);

/*
 * A 64-bit seed for the random stream of one (seed, epoch, index), used
 * for per-epoch shuffles and per-image augmentation so each draw depends on
 * nothing else (not on thread count, batch size or resume point).
 */
uint64_t dataset_stream_seed(uint64_t seed, uint64_t epoch, uint64_t index);

#endif
