/* int8 QAT setup for tests and benchmarks (qat_setup.h). */
#include "tests/backward/qat_setup.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/fakequant.h"
#include "model/fakequant_backward.h"

static enum qcal_dtype recipe_dtype(enum qat_recipe r, enum qp_kind kind)
{
	if (r == QAT_ALL_FLOAT)
		return QCAL_DTYPE_FLOAT;
	if (r == QAT_ALL_INT8)
		return QCAL_DTYPE_INT8;
	switch (kind) {
	case QP_KIND_LN_MEAN: case QP_KIND_LN_CENTERED: case QP_KIND_LN_SQUARE:
	case QP_KIND_LN_VAR: case QP_KIND_LN_RSTD: case QP_KIND_LN_NORMALIZED:
	case QP_KIND_SOFTMAX_SUB_MAX: case QP_KIND_SOFTMAX_EXP:
	case QP_KIND_SOFTMAX_SUM: case QP_KIND_SOFTMAX_RECIP:
		return QCAL_DTYPE_INT16;
	case QP_KIND_HEAD:
		return QCAL_DTYPE_INT32;
	default:
		return QCAL_DTYPE_INT8;
	}
}

static void observe_maxabs(void *user, int point, const float *x, size_t n,
			   const uint8_t *keep)
{
	double *mx = user;

	for (size_t i = 0; i < n; i++)
		if ((!keep || keep[i]) && isfinite(x[i]) && fabs(x[i]) > mx[point])
			mx[point] = fabs(x[i]);
}

enum qcal_status qat_setup_init(struct qat_setup *q, const struct swin_model *m,
				struct swin_plan *plan, const float *input, int batch,
				enum qat_recipe recipe, struct qcal_err *err)
{
	enum qcal_status st;
	double *mx = NULL;
	size_t wch = 0;

	memset(q, 0, sizeof(*q));
	st = qp_table_init(&q->table, &m->cfg, &m->table, err);
	if (st != QCAL_OK)
		return st;
	int n = q->table.count;
	q->qparams = calloc((size_t)n, sizeof(*q->qparams));
	mx = calloc((size_t)n, sizeof(double));
	for (int i = 0; i < n; i++)
		if (q->table.points[i].role == QP_ROLE_WEIGHT)
			wch += (size_t)q->table.points[i].channels;
	q->wscales = calloc(wch ? wch : 1, sizeof(float));
	q->dwscales = calloc(wch ? wch : 1, sizeof(float));
	q->wq = malloc(m->table.numel * sizeof(float));
	if (!q->qparams || !mx || !q->wscales || !q->dwscales || !q->wq) {
		free(mx);
		qat_setup_free(q);
		return qcal_err_set(err, QCAL_ENOMEM, "qat setup: out of memory");
	}
	struct qp_ctx obs = { .mode = QP_MODE_OBSERVE, .table = &q->table,
			      .observe = observe_maxabs, .observe_user = mx };
	st = swin_forward(plan, m, NULL, &obs, input, batch, err);
	if (st != QCAL_OK) {
		free(mx);
		qat_setup_free(q);
		return st;
	}
	float *ws = q->wscales;
	for (int i = 0; i < n; i++) {
		const struct qp_point *pt = &q->table.points[i];
		struct qp_qparams *qp = &q->qparams[i];
		if (pt->role == QP_ROLE_WEIGHT && recipe != QAT_ALL_FLOAT) {
			const struct swin_param_spec *s = &m->table.specs[pt->param_index];
			size_t inner = s->numel / (size_t)pt->channels;
			for (int c = 0; c < pt->channels; c++) {
				const float *w = m->params + s->offset + (size_t)c * inner;
				float a = 0.0f;
				for (size_t j = 0; j < inner; j++)
					a = fabsf(w[j]) > a ? fabsf(w[j]) : a;
				ws[c] = a > 0.0f ? a / 127.0f : 1.0f;
			}
			qp->dtype = QCAL_DTYPE_INT8;
			qcal_dtype_range(qp->dtype, &qp->qmin, &qp->qmax);
			qp->channels = pt->channels;
			qp->scales = ws;
			ws += pt->channels;
			continue;
		}
		qp->dtype = pt->role == QP_ROLE_WEIGHT ? QCAL_DTYPE_FLOAT :
			    recipe_dtype(recipe, pt->kind);
		if (qp->dtype == QCAL_DTYPE_FLOAT)
			continue;
		qcal_dtype_range(qp->dtype, &qp->qmin, &qp->qmax);
		qp->channels = 1;
		/* a factor in [0.97, 1.07) that differs from point to point */
		double f = 0.97 + 0.1 * fmod(0.6180339887 * (i + 1), 1.0);
		qp->scale = i == q->table.input ? 1.0f / 128.0f :
			    mx[i] > 0 ? (float)(f * mx[i] / (double)qp->qmax) : 1.0f;
	}
	free(mx);
	st = swin_qat_state_init(&q->st, &q->table, q->qparams, plan->batch, err);
	if (st == QCAL_OK && swin_weights_bind(&q->wqv, &m->cfg, &m->table, q->wq) != QCAL_OK)
		st = qcal_err_set(err, QCAL_ENOMEM, "qat setup: out of memory");
	if (st != QCAL_OK) {
		qat_setup_free(q);
		return st;
	}
	for (int i = 0; i < n; i++)
		q->st.learnable[i] = q->qparams[i].dtype != QCAL_DTYPE_FLOAT &&
				     q->qparams[i].dtype != QCAL_DTYPE_INT32 &&
				     q->table.points[i].role != QP_ROLE_WEIGHT &&
				     i != q->table.input;
	q->ctx.table = &q->table;
	q->ctx.qparams = q->qparams;
	q->ctx.threads = plan->threads;
	swin_qat_state_attach(&q->st, &q->ctx);
	return QCAL_OK;
}

void qat_setup_free(struct qat_setup *q)
{
	if (!q)
		return;
	swin_weights_unbind(&q->wqv);
	swin_qat_state_free(&q->st);
	qp_table_free(&q->table);
	free(q->qparams);
	free(q->wscales);
	free(q->dwscales);
	free(q->wq);
	memset(q, 0, sizeof(*q));
}

void qat_setup_fq_weights(struct qat_setup *q, const struct swin_model *m)
{
	memcpy(q->wq, m->params, m->table.numel * sizeof(float));
	for (int i = 0; i < q->table.count; i++) {
		const struct qp_point *pt = &q->table.points[i];
		if (pt->role != QP_ROLE_WEIGHT || q->qparams[i].dtype == QCAL_DTYPE_FLOAT)
			continue;
		const struct swin_param_spec *s = &m->table.specs[pt->param_index];
		const struct qp_qparams *qp = &q->qparams[i];
		fq_per_channel(q->wq + s->offset, qp->channels, s->numel / (size_t)qp->channels,
			       qp->scales, NULL, qp->qmin, qp->qmax);
	}
}

void qat_setup_weight_backward(struct qat_setup *q, const struct swin_model *m,
			       float *grads)
{
	for (int i = 0; i < q->table.count; i++) {
		const struct qp_point *pt = &q->table.points[i];
		if (pt->role != QP_ROLE_WEIGHT || q->qparams[i].dtype == QCAL_DTYPE_FLOAT)
			continue;
		const struct swin_param_spec *s = &m->table.specs[pt->param_index];
		const struct qp_qparams *qp = &q->qparams[i];
		size_t inner = s->numel / (size_t)qp->channels;
		fq_weight_backward_per_channel(grads + s->offset, m->params + s->offset,
					       qp->channels, inner, qp->scales, NULL,
					       qp->qmin, qp->qmax,
					       (float)fq_lsq_grad_factor(inner, qp->qmax),
					       q->dwscales + (qp->scales - q->wscales));
	}
}
