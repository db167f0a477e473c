/*
 * The learnable scales of QAT (LSQ, Esser et al. 2020) as one flat vector,
 * so that the same optimizer code that updates the weights updates them:
 * one entry per learnable activation point and one per output channel of a
 * learnable weight point, in point-table order.  Fixed points (the J5
 * 1/128 input) and float points have no entry.
 */
#ifndef QCAL_QAT_LSQ_H
#define QCAL_QAT_LSQ_H

#include <stddef.h>

#include "calib/scales.h"
#include "core/status.h"

struct lsq_params {
	size_t n;            /* entries */
	float *values;       /* [n] owned: the scales */
	int *offset;         /* [points] first entry of a point, -1 if not learnable */
	int points;
};

/* Gather the learnable scales of st (which must outlive nothing: values are copied). */
enum qcal_status lsq_params_init(struct lsq_params *p, const struct scale_table *st,
				 struct qcal_err *err);
void lsq_params_free(struct lsq_params *p);

/* Write the values back into st (scales clamped to >= min_scale). */
void lsq_params_store(struct lsq_params *p, struct scale_table *st, float min_scale);

#endif
