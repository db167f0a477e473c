/*
 * Per-point error and sensitivity groups (see analysis.h).
 *
 * The quantized pass stores every point's pre-quantization tensor for one
 * batch; the float pass, run on the same batch, compares each of its
 * tensors as it is produced, so only one side is ever held in full.
 */
#include "calib/analysis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/fakequant.h"
#include "model/swin_forward.h"

double point_error_sqnr_db(const struct point_error *e)
{
	if (!e->measured)
		return NAN;
	return e->noise > 0 ? 10.0 * log10(e->sig / e->noise) : INFINITY;
}

double point_error_cosine(const struct point_error *e)
{
	double d = sqrt(e->sig) * sqrt(e->qq);
	return e->measured && d > 0 ? e->dot / d : NAN;
}

double point_error_sqnr_alone_db(const struct point_error *e)
{
	if (!e->measured)
		return NAN;
	return e->noise_alone > 0 ? 10.0 * log10(e->sig / e->noise_alone) : INFINITY;
}

double point_error_cosine_alone(const struct point_error *e)
{
	double d = sqrt(e->sig) * sqrt(e->qq_alone);
	return e->measured && d > 0 ? e->dot_alone / d : NAN;
}

double point_error_clipped_fraction(const struct point_error *e)
{
	return e->count ? (double)e->clipped / (double)e->count : NAN;
}

struct store {
	float **bufs;             /* per point, one batch of its tensor */
	size_t *cap;
};

struct compare_ctx {
	const struct qp_table *table;
	const struct qp_qparams *qparams;
	const struct scale_table *scales;
	struct store *store;
	struct point_error *errors;
	int threads;
};

static void store_tensor(void *user, int id, const float *x, size_t n,
			 const uint8_t *keep)
{
	struct store *s = user;
	(void)keep;
	if (s->bufs[id] && n <= s->cap[id])
		memcpy(s->bufs[id], x, n * sizeof(float));
}

static inline float maybe_fq(const struct qp_qparams *q, float x, float inv)
{
	if (q->dtype == QCAL_DTYPE_FLOAT)
		return x;
	return fq_one(x, q->scale, inv, (float)q->zero_point, (float)q->qmin, (float)q->qmax);
}

static void set_hist_range(struct point_error *e, const struct scale_point *sp,
			   const struct qp_qparams *q, const float *x, size_t n,
			   const uint8_t *keep)
{
	double lo = INFINITY, hi = -INFINITY;

	if (sp && isfinite(sp->observed_min) && isfinite(sp->observed_max)) {
		lo = sp->observed_min;
		hi = sp->observed_max;
	} else {
		for (size_t i = 0; i < n; i++)
			if ((!keep || keep[i]) && isfinite(x[i])) {
				lo = fmin(lo, x[i]);
				hi = fmax(hi, x[i]);
			}
	}
	if (q->dtype != QCAL_DTYPE_FLOAT) {
		lo = fmin(lo, (q->qmin - q->zero_point) * (double)q->scale);
		hi = fmax(hi, (q->qmax - q->zero_point) * (double)q->scale);
	}
	if (!(lo < hi)) {
		lo = isfinite(lo) ? lo - 0.5 : -1;
		hi = lo + 1;
	}
	e->hist_lo = lo;
	e->hist_hi = hi;
}

static void compare_tensor(void *user, int id, const float *xf, size_t n,
			   const uint8_t *keep)
{
	struct compare_ctx *c = user;
	const struct qp_qparams *q = &c->qparams[id];
	const float *xq = c->store->bufs[id];
	struct point_error *e = &c->errors[id];
	const float inv = q->dtype == QCAL_DTYPE_FLOAT ? 1.0f : 1.0f / q->scale;
	double clip_lo = -INFINITY, clip_hi = INFINITY;
	double sig = 0, noise = 0, dot = 0, qq = 0, na = 0, da = 0, qa = 0;
	uint64_t count = 0, clipped = 0;

	if (!xq)
		return;
	if (!e->measured)
		set_hist_range(e, &c->scales->points[id], q, xf, n, keep);
	if (q->dtype != QCAL_DTYPE_FLOAT) {
		/* values that land outside the integer range before rounding */
		clip_lo = ((double)q->qmin - q->zero_point - 0.5) * q->scale;
		clip_hi = ((double)q->qmax - q->zero_point + 0.5) * q->scale;
	}
	double width = (e->hist_hi - e->hist_lo) / ANALYSIS_HIST_BINS;
	#pragma omp parallel for num_threads(c->threads) schedule(static) \
		reduction(+ : sig, noise, dot, qq, na, da, qa, count, clipped)
	for (size_t i = 0; i < n; i++) {
		if (keep && !keep[i])
			continue;
		double f = xf[i], a = maybe_fq(q, xq[i], inv), b = maybe_fq(q, xf[i], inv);
		sig += f * f;
		noise += (a - f) * (a - f);
		dot += a * f;
		qq += a * a;
		na += (b - f) * (b - f);
		da += b * f;
		qa += b * b;
		count++;
		clipped += f < clip_lo || f > clip_hi;
	}
	/* the histogram is cheap next to the forward; keep it serial */
	for (size_t i = 0; i < n; i++) {
		if (keep && !keep[i])
			continue;
		double f = xf[i];
		if (!(f >= e->hist_lo))
			e->below++;
		else if (!(f <= e->hist_hi))
			e->above++;
		else {
			int bin = (int)((f - e->hist_lo) / width);
			e->hist[bin >= ANALYSIS_HIST_BINS ? ANALYSIS_HIST_BINS - 1 : bin]++;
		}
	}
	e->measured = true;
	e->sig += sig;
	e->noise += noise;
	e->dot += dot;
	e->qq += qq;
	e->noise_alone += na;
	e->dot_alone += da;
	e->qq_alone += qa;
	e->count += count;
	e->clipped += clipped;
}

static void measure_weights(const struct qmodel *qm, const struct scale_table *st,
			    struct point_error *errors)
{
	const struct qp_table *t = st->table;

	for (int i = 0; i < t->count; i++) {
		const struct qp_point *p = &t->points[i];
		const struct scale_point *sp = &st->points[i];
		struct point_error *e = &errors[i];
		if (p->role != QP_ROLE_WEIGHT)
			continue;
		const struct swin_param_spec *spec = &qm->float_model.table.specs[p->param_index];
		const float *w = qm->float_model.params + spec->offset;
		const float *wq = qm->quant_model.params + spec->offset;
		size_t inner = spec->numel / (size_t)(sp->quantized ? sp->channels : 1);
		double lo = INFINITY, hi = -INFINITY;
		for (size_t k = 0; k < spec->numel; k++) {
			lo = fmin(lo, w[k]);
			hi = fmax(hi, w[k]);
		}
		e->hist_lo = lo;
		e->hist_hi = hi > lo ? hi : lo + 1;
		double width = (e->hist_hi - e->hist_lo) / ANALYSIS_HIST_BINS;
		for (size_t k = 0; k < spec->numel; k++) {
			double f = w[k], a = wq[k];
			e->sig += f * f;
			e->noise += (a - f) * (a - f);
			e->dot += a * f;
			e->qq += a * a;
			e->count++;
			if (sp->quantized) {
				int c = (int)(k / inner);
				double s = sp->scales[c], z = sp->zero_points[c];
				e->clipped += f < (sp->qmin - z - 0.5) * s || f > (sp->qmax - z + 0.5) * s;
			}
			int bin = (int)((f - e->hist_lo) / width);
			e->hist[bin < 0 ? 0 : bin >= ANALYSIS_HIST_BINS ? ANALYSIS_HIST_BINS - 1 : bin]++;
		}
		/* a weight's error is its own: nothing is upstream of it */
		e->noise_alone = e->noise;
		e->dot_alone = e->dot;
		e->qq_alone = e->qq;
		e->measured = true;
	}
}

enum qcal_status analysis_point_errors(const struct qmodel *qm,
				       const struct scale_table *scales,
				       eval_next_fn next, void *next_user,
				       const struct eval_options *opt,
				       struct point_error *errors,
				       struct qcal_err *err)
{
	const struct qp_table *t = scales->table;
	const struct swin_config *cfg = &qm->float_model.cfg;
	struct swin_plan quant_plan, float_plan;
	struct store store = { 0 };
	enum qcal_status st;
	size_t done = 0;

	memset(errors, 0, (size_t)t->count * sizeof(*errors));
	store.bufs = calloc((size_t)t->count, sizeof(float *));
	store.cap = calloc((size_t)t->count, sizeof(size_t));
	if (!store.bufs || !store.cap) {
		st = qcal_err_set(err, QCAL_ENOMEM, "analysis: out of memory");
		goto out_free_store;
	}
	for (int i = 0; i < t->count; i++) {
		const struct qp_point *p = &t->points[i];
		if (p->role == QP_ROLE_WEIGHT)
			continue;
		store.cap[i] = p->numel * (p->role == QP_ROLE_ACTIVATION ? (size_t)opt->batch : 1);
		store.bufs[i] = malloc(store.cap[i] * sizeof(float));
		if (!store.bufs[i]) {
			st = qcal_err_set(err, QCAL_ENOMEM,
					  "analysis: out of memory keeping one batch of %s (use a smaller --batch)",
					  p->name);
			goto out_free_store;
		}
	}
	measure_weights(qm, scales, errors);
	st = swin_plan_init(&quant_plan, cfg, opt->batch, SWIN_PLAN_DECOMPOSED, opt->threads, NULL, err);
	if (st != QCAL_OK)
		goto out_free_store;
	st = swin_plan_init(&float_plan, cfg, opt->batch, SWIN_PLAN_DECOMPOSED, opt->threads, NULL, err);
	if (st != QCAL_OK)
		goto out_free_quant;
	struct qp_ctx qctx = qm->ctx;
	qctx.observe = store_tensor;
	qctx.observe_user = &store;
	struct compare_ctx cmp = {
		.table = t, .qparams = qm->qparams, .scales = scales, .store = &store,
		.errors = errors, .threads = opt->threads > 0 ? opt->threads : 1,
	};
	struct qp_ctx fctx = {
		.mode = QP_MODE_OBSERVE, .table = t, .observe = compare_tensor,
		.observe_user = &cmp,
	};
	for (;;) {
		struct eval_batch b = { 0 };
		st = next(next_user, &b, err);
		if (st != QCAL_OK || b.count == 0)
			break;
		st = swin_forward(&quant_plan, &qm->quant_model, NULL, &qctx, b.images, b.count, err);
		if (st == QCAL_OK)
			st = swin_forward(&float_plan, &qm->float_model, NULL, &fctx, b.images, b.count, err);
		if (st != QCAL_OK)
			break;
		done += (size_t)b.count;
		if (qcal_progress_report(&opt->progress, done, opt->total ? opt->total : done, NULL)) {
			st = qcal_err_set(err, QCAL_ECANCEL, "analysis: interrupted after %zu images", done);
			break;
		}
	}
	swin_plan_free(&float_plan);
out_free_quant:
	swin_plan_free(&quant_plan);
out_free_store:
	for (int i = 0; store.bufs && i < t->count; i++)
		free(store.bufs[i]);
	free(store.bufs);
	free(store.cap);
	return st;
}

enum qcal_status scale_table_copy(struct scale_table *dst,
				  const struct scale_table *src,
				  struct qcal_err *err)
{
	enum qcal_status st = scale_table_init(dst, src->table, err);

	if (st != QCAL_OK)
		return st;
	for (int i = 0; i < src->table->count; i++) {
		const struct scale_point *p = &src->points[i];
		struct scale_point *q = &dst->points[i];
		*q = *p;
		q->scales = NULL;
		q->zero_points = NULL;
		if (p->scales) {
			st = scale_point_set(q, p->dtype, p->symmetric, p->channels, p->scales,
					     p->zero_points, err);
			if (st != QCAL_OK) {
				scale_table_free(dst);
				return st;
			}
			q->quantized = p->quantized;
			q->qmin = p->qmin;
			q->qmax = p->qmax;
		}
	}
	dst->input_folded = src->input_folded;
#define DUP(f) dst->f = src->f ? strdup(src->f) : NULL
	DUP(model_name);
	DUP(model_file);
	DUP(config_name);
	DUP(config_file);
	DUP(data);
	DUP(note);
#undef DUP
	dst->images = src->images;
	dst->seed = src->seed;
	return QCAL_OK;
}

enum qcal_status analysis_subset_scales(const struct scale_table *src,
					const bool *members, bool keep,
					struct scale_table *dst,
					struct qcal_err *err)
{
	enum qcal_status st = scale_table_copy(dst, src, err);

	if (st != QCAL_OK)
		return st;
	for (int i = 0; i < src->table->count; i++)
		if (members[i] != keep)
			dst->points[i].quantized = false;
	return QCAL_OK;
}

struct kind_family {
	const char *name;
	enum qp_kind kinds[6];
	int n;
};

static const struct kind_family families[] = {
	{ "input", { QP_KIND_INPUT }, 1 },
	{ "patch embedding", { QP_KIND_PATCH_EMBED }, 1 },
	{ "LayerNorm intermediates", { QP_KIND_LN_MEAN, QP_KIND_LN_CENTERED, QP_KIND_LN_SQUARE,
				       QP_KIND_LN_VAR, QP_KIND_LN_RSTD, QP_KIND_LN_NORMALIZED }, 6 },
	{ "LayerNorm outputs", { QP_KIND_LN_OUT }, 1 },
	{ "attention q/k/v", { QP_KIND_ATTN_Q, QP_KIND_ATTN_K, QP_KIND_ATTN_V,
			       QP_KIND_ATTN_Q_SCALED }, 4 },
	{ "attention q@k and attn@v", { QP_KIND_ATTN_QK, QP_KIND_ATTN_AV }, 2 },
	{ "relative position bias", { QP_KIND_REL_POS_BIAS }, 1 },
	{ "attention logits", { QP_KIND_ATTN_LOGITS }, 1 },
	{ "softmax intermediates", { QP_KIND_SOFTMAX_SUB_MAX, QP_KIND_SOFTMAX_EXP,
				     QP_KIND_SOFTMAX_SUM, QP_KIND_SOFTMAX_RECIP }, 4 },
	{ "softmax outputs", { QP_KIND_SOFTMAX_OUT }, 1 },
	{ "linear outputs", { QP_KIND_LINEAR }, 1 },
	{ "GELU", { QP_KIND_GELU }, 1 },
	{ "residual adds", { QP_KIND_RESIDUAL_ADD }, 1 },
	{ "patch merging concat", { QP_KIND_MERGE_CONCAT }, 1 },
	{ "pool and logits", { QP_KIND_POOL, QP_KIND_HEAD }, 2 },
	{ "weights", { QP_KIND_WEIGHT }, 1 },
};

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int add_group(struct analysis_group **groups, int *count,
		     const struct scale_table *st, const char *name,
		     enum analysis_group_kind by, bool (*pred)(const struct qp_point *, const void *),
		     const void *arg)
{
	const struct qp_table *t = st->table;
	struct analysis_group g = { .by = by };
	struct analysis_group *ng;

	g.members = calloc((size_t)t->count, sizeof(bool));
	if (!g.members)
		return -1;
	for (int i = 0; i < t->count; i++)
		if (pred(&t->points[i], arg)) {
			g.members[i] = true;
			g.size += st->points[i].quantized;
		}
	if (g.size == 0) {
		free(g.members);
		return 0;
	}
	snprintf(g.name, sizeof(g.name), "%s", name);
	ng = realloc(*groups, (size_t)(*count + 1) * sizeof(**groups));
	if (!ng) {
		free(g.members);
		return -1;
	}
	*groups = ng;
	(*groups)[(*count)++] = g;
	return 0;
}

static bool in_family(const struct qp_point *p, const void *arg)
{
	const struct kind_family *f = arg;
	for (int k = 0; k < f->n; k++)
		if (p->kind == f->kinds[k])
			return true;
	return false;
}

static bool has_prefix(const struct qp_point *p, const void *arg)
{
	return starts_with(p->name, arg);
}

static bool is_stem(const struct qp_point *p, const void *arg)
{
	(void)arg;
	return p->kind == QP_KIND_INPUT || starts_with(p->name, "features.0.");
}

static bool is_head(const struct qp_point *p, const void *arg)
{
	(void)arg;
	return starts_with(p->name, "norm.") || starts_with(p->name, "avgpool.") ||
	       starts_with(p->name, "head.");
}

enum qcal_status analysis_groups(const struct scale_table *st,
				 struct analysis_group **groups, int *count,
				 struct qcal_err *err)
{
	const struct qp_table *t = st->table;
	char prefix[64], name[64];
	int rc = 0;

	*groups = NULL;
	*count = 0;
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]) && !rc; f++)
		rc = add_group(groups, count, st, families[f].name, GROUP_BY_KIND, in_family,
			       &families[f]);
	rc = rc ? rc : add_group(groups, count, st, "stem (input, patch embedding)",
				 GROUP_BY_BLOCK, is_stem, NULL);
	/* blocks and merges, in network order, from the point names */
	for (int i = 0; i < t->count && !rc; i++) {
		const char *n = t->points[i].name;
		int f, b, used;
		if (sscanf(n, "features.%d.%d.%n", &f, &b, &used) == 2 && used > 0 && f > 0) {
			snprintf(prefix, sizeof(prefix), "features.%d.%d.", f, b);
			snprintf(name, sizeof(name), "block features.%d.%d", f, b);
		} else if (sscanf(n, "features.%d.%n", &f, &used) == 1 && used > 0 && f > 0 &&
			   f % 2 == 0) {
			snprintf(prefix, sizeof(prefix), "features.%d.", f);
			snprintf(name, sizeof(name), "patch merging features.%d", f);
		} else {
			continue;
		}
		bool seen = false;
		for (int g = 0; g < *count && !seen; g++)
			seen = !strcmp((*groups)[g].name, name);
		if (!seen)
			rc = add_group(groups, count, st, name, GROUP_BY_BLOCK, has_prefix, prefix);
	}
	rc = rc ? rc : add_group(groups, count, st, "head (norm, pool, classifier)",
				 GROUP_BY_BLOCK, is_head, NULL);
	if (rc) {
		analysis_groups_free(*groups, *count);
		*groups = NULL;
		*count = 0;
		return qcal_err_set(err, QCAL_ENOMEM, "analysis: out of memory");
	}
	return QCAL_OK;
}

void analysis_groups_free(struct analysis_group *groups, int count)
{
	for (int i = 0; groups && i < count; i++)
		free(groups[i].members);
	free(groups);
}

void scale_table_promote(struct scale_table *st, const bool *members,
			 enum qcal_dtype dtype)
{
	int64_t qmin, qmax;

	qcal_dtype_range(dtype, &qmin, &qmax);
	for (int i = 0; i < st->table->count; i++) {
		struct scale_point *p = &st->points[i];
		if (!members[i] || !p->quantized || p->dtype == dtype)
			continue;
		for (int c = 0; c < p->channels; c++) {
			double lo = (double)(p->qmin - p->zero_points[c]) * p->scales[c];
			double hi = (double)(p->qmax - p->zero_points[c]) * p->scales[c];
			float s = (float)((hi - lo) / (double)(qmax - qmin));
			p->scales[c] = s;
			if (p->symmetric && qcal_dtype_is_signed(dtype)) {
				p->zero_points[c] = 0;
			} else {
				double z = (double)qmin - nearbyint(lo / s);
				p->zero_points[c] = (int32_t)(z < qmin ? qmin : z > qmax ? qmax : z);
			}
		}
		p->dtype = dtype;
		p->qmin = qmin;
		p->qmax = qmax;
	}
}
