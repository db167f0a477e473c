/*
 * Where accuracy goes: per-point error of a fake-quantized model against its
 * float twin, and sensitivity of the accuracy to groups of points.
 *
 * Per point, two errors are measured on the same images:
 *   upstream  fq(x_q) vs x_f  where x_q is the tensor the quantized model
 *             computes at that point (everything before it quantized) and
 *             x_f the float model's tensor; this is what the deployed
 *             model carries;
 *   alone     fq(x_f) vs x_f  the error this point adds by itself.
 * Each as SQNR (dB) and cosine similarity, plus the fraction of float
 * values outside the point's clip range and a histogram of the float values
 * for plots.  Weights are compared directly (fq(w) vs w).
 */
#ifndef QCAL_CALIB_ANALYSIS_H
#define QCAL_CALIB_ANALYSIS_H

#include <stdbool.h>
#include <stdint.h>

#include "calib/evaluate.h"
#include "calib/qmodel.h"
#include "calib/scales.h"

#define ANALYSIS_HIST_BINS 64

struct point_error {
	bool measured;
	uint64_t count, clipped;
	double sig, noise, dot, qq;         /* upstream: sum x_f^2, (fq-x_f)^2, fq*x_f, fq^2 */
	double noise_alone, dot_alone, qq_alone;
	double hist_lo, hist_hi;            /* histogram range (float values) */
	uint64_t hist[ANALYSIS_HIST_BINS];
	uint64_t below, above;              /* float values outside [hist_lo, hist_hi] */
};

double point_error_sqnr_db(const struct point_error *e);
double point_error_cosine(const struct point_error *e);
double point_error_sqnr_alone_db(const struct point_error *e);
double point_error_cosine_alone(const struct point_error *e);
double point_error_clipped_fraction(const struct point_error *e);

/*
 * Measure every point on the images next() delivers (errors[table->count],
 * initialised by this call).  batch should be small for big models: the
 * quantized pass keeps one batch of every point's tensor.
 */
enum qcal_status analysis_point_errors(const struct qmodel *qm,
				       const struct scale_table *scales,
				       eval_next_fn next, void *next_user,
				       const struct eval_options *opt,
				       struct point_error *errors,
				       struct qcal_err *err);

/* Sensitivity groups: a name and a point predicate. */
enum analysis_group_kind { GROUP_BY_KIND, GROUP_BY_BLOCK };

struct analysis_group {
	char name[64];
	enum analysis_group_kind by;
	bool *members;      /* [table->count], owned */
	int size;           /* quantized points in the group */
};

/*
 * The groups of a table: by kind family (input, LayerNorm intermediates,
 * LayerNorm outputs, softmax intermediates, softmax outputs, attention
 * matmuls, relative position bias, linear outputs, GELU, residual adds,
 * patch merging, head/pool, weights) and by block (each Swin block, each
 * patch merging, stem, head).  Only groups with a quantized point in scales
 * are returned.
 */
enum qcal_status analysis_groups(const struct scale_table *scales,
				 struct analysis_group **groups, int *count,
				 struct qcal_err *err);
void analysis_groups_free(struct analysis_group *groups, int count);

/*
 * A copy of src in which a point stays quantized iff members[i] == keep
 * (keep = true: only the group is quantized; false: all but the group).
 */
enum qcal_status analysis_subset_scales(const struct scale_table *src,
					const bool *members, bool keep,
					struct scale_table *dst,
					struct qcal_err *err);

/*
 * Re-express the quantized points with members[i] in `dtype`, keeping each
 * point's clip range (the scale shrinks by the ratio of the integer ranges).
 * This is how auto-precision promotes a group to int16 without
 * recalibrating.
 */
void scale_table_promote(struct scale_table *st, const bool *members,
			 enum qcal_dtype dtype);

/* Deep copy of a scale table (same point table). */
enum qcal_status scale_table_copy(struct scale_table *dst,
				  const struct scale_table *src,
				  struct qcal_err *err);

#endif
