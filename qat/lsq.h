/*
 * The learnable scales of QAT (LSQ, Esser et al. 2020) as one flat vector,
 * so that the same optimizer code that updates the weights updates them:
 * one entry per learnable activation point and one per output channel of a
 * learnable weight point, in point-table order.  Fixed points (the J5
 * 1/128 input) and float points have no entry.
 *
 * The vector holds log(scale): scales of one model span ten orders of
 * magnitude (int8 activations ~1e-2, int16 LayerNorm steps ~1e-5, int32
 * logits ~1e-9), and Adam moves every parameter by about the learning rate
 * per step, which in linear space would wreck the small ones on the first
 * step.  In log space the same step is a relative change for every scale.
 * Chain rule: d/d log(s) = s * d/ds (lsq_params_to_log_grad).
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

/* Write exp(values) back into st as the scales. */
void lsq_params_store(struct lsq_params *p, struct scale_table *st);

/* grad (n) holds d loss / d scale; turn it into d loss / d log(scale). */
void lsq_params_to_log_grad(const struct lsq_params *p, float *grad);

#endif
