/*
 * Calibration engine (see calibrate.h).
 *
 * One observer per point.  Each tensor is handed to
 * observer_update_parallel, which splits it over the session's threads and
 * leaves exactly the state a single thread would (for every kind, moving
 * averages and torch's histogram included), so scales do not depend on the
 * thread count and the observer work uses every core while the forward
 * pass waits for it.
 */
#include "calib/calibrate.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/swin_forward.h"
#include "observers/observer.h"

struct calib_session {
	struct swin_model model;         /* folded when the config says so */
	struct qp_table table;
	const struct qconfig *config;
	struct qconfig_spec *specs;      /* [count] */
	struct observer **obs;           /* [count]; NULL = not observed */
	bool *weight;                    /* [count] weight points (observed at creation) */
	int threads;
	struct calib_options opt;
	struct swin_plan plan;
	enum qcal_status cb_status;      /* first failure inside the observe callback */
	struct qcal_err cb_err;
	size_t images;
};

static enum qcal_status make_options(const struct qconfig_spec *spec,
				     const struct qp_point *p, const char *override,
				     struct observer_options *o, struct qcal_err *err)
{
	const char *name = spec->observer;
	enum observer_kind kind;

	if (override && p->role != QP_ROLE_WEIGHT)
		name = override;
	if (observer_kind_parse(name, &kind) != 0)
		return qcal_err_set(err, QCAL_EINVAL, "point %s: unknown observer '%s'", p->name, name);
	/* a fixed scale needs no statistics beyond the range we report */
	if (spec->fixed)
		kind = OBSERVER_MINMAX;
	observer_options_init(o, kind, spec->dtype, spec->symmetric);
	o->percentile = spec->percentile;
	o->bins = spec->bins;
	if (kind == OBSERVER_PER_CHANNEL_MINMAX) {
		if (p->role != QP_ROLE_WEIGHT)
			return qcal_err_set(err, QCAL_EINVAL,
					    "point %s: per_channel_minmax is for weights", p->name);
		o->channels = p->channels;
	}
	return QCAL_OK;
}

static void observe_cb(void *user, int id, const float *x, size_t n,
		       const uint8_t *keep)
{
	struct calib_session *s = user;
	struct observer *o = s->obs[id];

	if (!o || s->weight[id] || s->cb_status != QCAL_OK)
		return;
	enum qcal_status st = observer_update_parallel(o, x, keep, n, s->threads, &s->cb_err);
	if (st != QCAL_OK) {
		s->cb_status = st;
		qcal_err_prefix(&s->cb_err, "point %s: ", s->table.points[id].name);
	}
}

enum qcal_status calib_session_create(struct calib_session **out,
				      const struct swin_model *model,
				      const struct qconfig *config,
				      const struct calib_options *opt,
				      struct qcal_err *err)
{
	struct calib_session *s = calloc(1, sizeof(*s));
	enum qcal_status st;

	*out = NULL;
	if (!s)
		return qcal_err_set(err, QCAL_ENOMEM, "calibration: out of memory");
	s->config = config;
	s->opt = *opt;
	s->threads = opt->threads > 0 ? opt->threads : omp_get_num_procs();
	if (opt->observer) {
		enum observer_kind k;
		if (observer_kind_parse(opt->observer, &k) != 0 || k == OBSERVER_PER_CHANNEL_MINMAX) {
			free(s);
			return qcal_err_set(err, QCAL_EINVAL,
					    "unknown activation observer '%s' (minmax, moving_average, percentile, entropy, mse)",
					    opt->observer);
		}
	}
	st = swin_model_clone(&s->model, model, err);
	if (st != QCAL_OK) {
		free(s);
		return st;
	}
	if (config->fold_input) {
		if (!model->input_folded)
			swin_model_fold_input_norm(&s->model);
	} else if (model->input_folded) {
		st = qcal_err_set(err, QCAL_EINVAL,
				  "%s does not fold the input normalisation, but the model's is already folded",
				  config->path);
		goto out_fail;
	}
	st = qp_table_init(&s->table, &s->model.cfg, &s->model.table, err);
	if (st != QCAL_OK)
		goto out_fail;
	s->specs = calloc((size_t)s->table.count, sizeof(*s->specs));
	s->obs = calloc((size_t)s->table.count, sizeof(*s->obs));
	s->weight = calloc((size_t)s->table.count, sizeof(*s->weight));
	if (!s->specs || !s->obs || !s->weight) {
		st = qcal_err_set(err, QCAL_ENOMEM, "calibration: out of memory");
		goto out_fail;
	}
	st = qconfig_resolve(config, &s->table, s->specs, err);
	if (st != QCAL_OK)
		goto out_fail;
	for (int i = 0; i < s->table.count; i++) {
		const struct qp_point *p = &s->table.points[i];
		struct observer_options o;
		if (!s->specs[i].quantize)
			continue;
		st = make_options(&s->specs[i], p, opt->observer, &o, err);
		if (st != QCAL_OK)
			goto out_fail;
		st = observer_create(&s->obs[i], &o, err);
		if (st != QCAL_OK) {
			qcal_err_prefix(err, "point %s: ", p->name);
			goto out_fail;
		}
		if (p->role == QP_ROLE_WEIGHT) {
			/* weights need no images: observe them once, here */
			const struct swin_param_spec *ps = &s->model.table.specs[p->param_index];
			s->weight[i] = true;
			st = observer_update(s->obs[i], s->model.params + ps->offset, ps->numel, err);
			if (st != QCAL_OK) {
				qcal_err_prefix(err, "point %s: ", p->name);
				goto out_fail;
			}
		}
	}
	st = swin_plan_init(&s->plan, &s->model.cfg, opt->batch, SWIN_PLAN_DECOMPOSED,
			    opt->threads, NULL, err);
	if (st != QCAL_OK)
		goto out_fail;
	*out = s;
	return QCAL_OK;
out_fail:
	calib_session_free(s);
	return st;
}

void calib_session_free(struct calib_session *s)
{
	if (!s)
		return;
	for (int i = 0; s->obs && i < s->table.count; i++)
		observer_free(s->obs[i]);
	free(s->obs);
	free(s->weight);
	free(s->specs);
	swin_plan_free(&s->plan);
	qp_table_free(&s->table);
	swin_model_free(&s->model);
	free(s);
}

const struct swin_model *calib_session_model(const struct calib_session *s)
{
	return &s->model;
}

const struct qp_table *calib_session_points(const struct calib_session *s)
{
	return &s->table;
}

enum qcal_status calib_session_observe(struct calib_session *s, eval_next_fn next,
				       void *next_user, size_t *images,
				       struct qcal_err *err)
{
	enum qcal_status st;
	struct qp_ctx ctx = {
		.mode = QP_MODE_OBSERVE, .table = &s->table, .observe = observe_cb,
		.observe_user = s, .threads = s->opt.threads,
	};

	for (;;) {
		struct eval_batch b = { 0 };
		char status[64];
		st = next(next_user, &b, err);
		if (st != QCAL_OK || b.count == 0)
			break;
		st = swin_forward(&s->plan, &s->model, NULL, &ctx, b.images, b.count, err);
		if (st != QCAL_OK)
			break;
		if (s->cb_status != QCAL_OK) {
			st = s->cb_status;
			if (err)
				*err = s->cb_err;
			break;
		}
		s->images += (size_t)b.count;
		snprintf(status, sizeof(status), "%d points", s->table.count);
		if (qcal_progress_report(&s->opt.progress, s->images,
					 s->opt.total ? s->opt.total : s->images, status)) {
			st = qcal_err_set(err, QCAL_ECANCEL, "calibration interrupted after %zu images",
					  s->images);
			break;
		}
	}
	if (images)
		*images = s->images;
	return st;
}

enum qcal_status calib_session_scales(struct calib_session *s,
				      const struct qp_table *points,
				      struct scale_table *table,
				      struct qcal_err *err)
{
	enum qcal_status st;
	char failed[768] = "";
	int nfailed = 0;
	struct qcal_err first = { 0 };

	if (points->count != s->table.count)
		return qcal_err_set(err, QCAL_EINVAL,
				    "calibration: point table has %d points, the session's model %d",
				    points->count, s->table.count);
	st = scale_table_init(table, points, err);
	if (st != QCAL_OK)
		return st;
	table->input_folded = s->model.input_folded;
	table->images = (long)s->images;
	for (int i = 0; i < s->table.count; i++) {
		const struct qp_point *p = &s->table.points[i];
		const struct qconfig_spec *spec = &s->specs[i];
		struct scale_point *sp = &table->points[i];
		struct observer_qparams q;
		struct qcal_err e;
		if (!spec->quantize)
			continue;
		enum qcal_status qs = observer_compute_qparams(s->obs[i], &q, &e);
		if (qs != QCAL_OK && !spec->fixed) {
			if (nfailed == 0)
				first = e;
			if (nfailed < 8)
				snprintf(failed + strlen(failed), sizeof(failed) - strlen(failed), "%s%s",
					 nfailed ? ", " : "", p->name);
			nfailed++;
			observer_qparams_free(&q);
			continue;
		}
		if (spec->fixed) {
			float scale = (float)spec->scale;
			st = scale_point_set(sp, spec->dtype, spec->symmetric, 1, &scale,
					     &spec->zero_point, err);
		} else {
			st = scale_point_set(sp, spec->dtype, spec->symmetric, q.channels, q.scales,
					     q.zero_points, err);
		}
		if (st == QCAL_OK) {
			sp->fixed = spec->fixed;
			sp->learnable = spec->learnable && !spec->fixed;
			snprintf(sp->observer, sizeof(sp->observer), "%s",
				 spec->fixed ? "fixed" : observer_kind_name(q.kind));
			if (qs == QCAL_OK) {
				sp->observed_min = q.observed_min;
				sp->observed_max = q.observed_max;
				sp->clip_min = spec->fixed ? (sp->qmin - sp->zero_points[0]) * (double)sp->scales[0] : q.clip_min;
				sp->clip_max = spec->fixed ? (sp->qmax - sp->zero_points[0]) * (double)sp->scales[0] : q.clip_max;
				sp->count = q.count;
				sp->nan_count = q.nan_count;
				sp->inf_count = q.inf_count;
			}
			st = scale_point_validate(sp, p->name, err);
		}
		observer_qparams_free(&q);
		if (st != QCAL_OK)
			break;
	}
	if (st == QCAL_OK && nfailed)
		st = qcal_err_set(err, QCAL_ESTATE,
				  "%d point%s got no scale: %s%s (first: %s)", nfailed,
				  nfailed > 1 ? "s" : "", failed, nfailed > 8 ? ", ..." : "", first.msg);
	if (st != QCAL_OK)
		scale_table_free(table);
	return st;
}
