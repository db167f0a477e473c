/* Flat vector of learnable scales; see lsq.h. */
#include "qat/lsq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum qcal_status lsq_params_init(struct lsq_params *p, const struct scale_table *st,
				 struct qcal_err *err)
{
	const struct qp_table *t = st->table;
	size_t n = 0;

	memset(p, 0, sizeof(*p));
	p->points = t->count;
	p->offset = malloc((size_t)t->count * sizeof(int));
	if (!p->offset)
		return qcal_err_set(err, QCAL_ENOMEM, "lsq: out of memory");
	for (int i = 0; i < t->count; i++) {
		const struct scale_point *sp = &st->points[i];
		p->offset[i] = sp->quantized && sp->learnable && !sp->fixed ? (int)n : -1;
		if (p->offset[i] >= 0)
			n += (size_t)sp->channels;
	}
	p->n = n;
	p->values = malloc((n ? n : 1) * sizeof(float));
	if (!p->values) {
		lsq_params_free(p);
		return qcal_err_set(err, QCAL_ENOMEM, "lsq: out of memory");
	}
	for (int i = 0; i < t->count; i++)
		for (int c = 0; p->offset[i] >= 0 && c < st->points[i].channels; c++)
			p->values[p->offset[i] + c] = logf(st->points[i].scales[c]);
	return QCAL_OK;
}

void lsq_params_free(struct lsq_params *p)
{
	if (!p)
		return;
	free(p->values);
	free(p->offset);
	memset(p, 0, sizeof(*p));
}

void lsq_params_store(struct lsq_params *p, struct scale_table *st)
{
	for (int i = 0; i < p->points; i++) {
		struct scale_point *sp = &st->points[i];
		if (p->offset[i] < 0)
			continue;
		for (int c = 0; c < sp->channels; c++)
			sp->scales[c] = expf(p->values[p->offset[i] + c]);
		snprintf(sp->observer, sizeof(sp->observer), "lsq");
	}
}

void lsq_params_to_log_grad(const struct lsq_params *p, float *grad)
{
	for (size_t k = 0; k < p->n; k++)
		grad[k] *= expf(p->values[k]);
}
