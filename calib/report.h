/*
 * Accuracy regression reports as data: what `qcal report` measured, written
 * as versioned JSON (format "qcal-report", version 1) and read back as a
 * baseline for the regression gate.  Rendering to Markdown and HTML is the
 * CLI's business (tools/report_render.c); this module owns the numbers.
 */
#ifndef QCAL_CALIB_REPORT_H
#define QCAL_CALIB_REPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "calib/analysis.h"
#include "calib/metrics.h"
#include "calib/scales.h"
#include "core/status.h"

#define REPORT_FORMAT_NAME "qcal-report"
#define REPORT_FORMAT_VERSION 1

struct report_group {
	char name[64];
	const char *by;          /* "kind" or "block" */
	int size;                /* quantized points in the group */
	struct metrics only;     /* only this group quantized */
	struct metrics without;  /* everything but this group quantized */
};

struct report {
	char *model_file, *scales_file, *config_name, *data;
	struct metrics overall;       /* quantized vs float on the whole set */
	int64_t analysis_images;      /* images behind the per-point numbers */
	const struct scale_table *scales; /* borrowed */
	struct point_error *points;   /* [table->count] owned */
	struct report_group *groups;  /* owned */
	int num_groups;
	int64_t sensitivity_images;
	/* auto-precision */
	bool auto_precision;
	double max_drop;
	char **promoted;              /* group names promoted to int16, in order */
	int num_promoted;
	struct metrics after_promotion;
	char *promoted_config;        /* path of the written config */
};

void report_init(struct report *r);
void report_free(struct report *r);

/* Points ranked worst first by upstream SQNR (quantized, measured points
 * only); writes up to max indices, returns the count. */
int report_worst_points(const struct report *r, int *indices, int max);

enum qcal_status report_write_json(const struct report *r, const char *path,
				   struct qcal_err *err);

/* What the gate compares against. */
struct report_baseline {
	double top1, float_top1;      /* fractions, NAN if absent */
	int num_points;
	char **names;                 /* owned */
	double *sqnr_db;              /* owned, per name */
};

enum qcal_status report_baseline_load(struct report_baseline *b, const char *path,
				      struct qcal_err *err);
void report_baseline_free(struct report_baseline *b);

/*
 * The gate: fails (returns false, reason filled with one line) when the
 * top-1 of r is more than max_drop percentage points below the baseline's,
 * or a point's upstream SQNR is more than max_sqnr_drop dB below its
 * baseline value (points absent from either side are ignored).
 */
bool report_gate(const struct report *r, const struct report_baseline *b,
		 const char *baseline_path, double max_drop, double max_sqnr_drop,
		 char *reason, size_t reason_size);

#endif
