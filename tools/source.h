/*
 * Where a command's images come from: an image folder / list file (--data,
 * decoded and preprocessed by datasets/) or preprocessed tensors in HDF5
 * (--input, e.g. a reference.h5).  Both end up as an eval_next_fn yielding
 * normalised NCHW batches for the model at hand, with the normalisation the
 * model expects: (p/255 - mean)/std, or (p-128)/128 for folded models.
 *
 * The options shared by eval, calibrate and report (--limit, --sample,
 * --seed, --workers, --skip-bad, --resize, --interp) are parsed here once.
 */
#ifndef QCAL_TOOLS_SOURCE_H
#define QCAL_TOOLS_SOURCE_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "calib/evaluate.h"
#include "model/swin_model.h"

struct source_options {
	const char *data;        /* image folder or list file */
	const char *input;       /* HDF5 tensor file (alternative to data) */
	const char *dataset;     /* dataset name inside input [input] */
	int batch;
	int workers;             /* decode threads [2] */
	long limit;              /* first N images (0 = all) */
	long sample;             /* seeded class-balanced N images (0 = all) */
	uint64_t seed;
	bool skip_bad;
	bool folded;             /* feed (p-128)/128 */
	int resize_size;         /* shorter side before the centre crop (0 = default) */
	const char *interp;      /* "bilinear" (default) or "bicubic" */
};

/* getopt_long entries for the shared options (codes >= 1000). */
#define SOURCE_LONG_OPTIONS                                        \
	{ "data", required_argument, NULL, 'd' },                  \
	{ "input", required_argument, NULL, 1000 },                \
	{ "limit", required_argument, NULL, 1001 },                \
	{ "sample", required_argument, NULL, 1002 },               \
	{ "seed", required_argument, NULL, 1003 },                 \
	{ "workers", required_argument, NULL, 1004 },              \
	{ "skip-bad", no_argument, NULL, 1005 },                   \
	{ "resize", required_argument, NULL, 1006 },               \
	{ "interp", required_argument, NULL, 1007 }

/* Help text for the shared options. */
#define SOURCE_HELP                                                                         \
	"  -d, --data PATH         image folder (class subfolders, label = sorted index, or a\n" \
	"                          flat folder) or list file of 'relative/path label' lines\n"   \
	"      --input FILE        preprocessed tensors instead: HDF5 'input' (N,C,H,W) [+ 'labels']\n" \
	"      --limit N           the first N images\n"                                          \
	"      --sample N          a seeded, class-balanced sample of N images\n"                 \
	"      --seed S            seed of --sample (default 0)\n"                                \
	"      --workers N         image decoding threads (default 2)\n"                          \
	"      --skip-bad          skip unreadable images (counted and reported) instead of\n"    \
	"                          stopping at the first one\n"                                   \
	"      --resize N          images not at the model's size: shorter side to N, then the\n" \
	"                          centre crop (default round(size / 0.875), as torchvision)\n"   \
	"      --interp I          bilinear (default) or bicubic, both exactly as Pillow\n"

/*
 * Handle option code c (from getopt_long) if it is a shared one: returns 1
 * when handled, 0 when not a shared option, -1 after printing a usage error.
 */
int source_parse_option(struct source_options *so, int c, const char *arg,
			const char *cmd);

struct source;

enum qcal_status source_open(struct source **out, const struct swin_config *cfg,
			     const struct source_options *opt, struct qcal_err *err);
void source_free(struct source *s);
/* Images the source will deliver (for progress bars). */
size_t source_count(const struct source *s);
/* Files skipped as unreadable so far (skip_bad), and the first one's error. */
size_t source_skipped(const struct source *s, const char **first);
/* The eval_next_fn; user = the source. */
enum qcal_status source_next(void *user, struct eval_batch *b, struct qcal_err *err);
/* A description for reports ("data/cifar10-sample (300 images)"). */
const char *source_describe(const struct source *s);

#endif
