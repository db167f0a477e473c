/*
 * Point table construction, kind names, and qp_apply.
 *
 * Points are appended in forward order, so iterating the table walks the
 * network from input to logits; reports and scale files keep that order.
 */
#include "model/qpoint.h"

#include "model/fakequant_backward.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[QP_KIND_COUNT] = {
	[QP_KIND_INPUT] = "input",
	[QP_KIND_PATCH_EMBED] = "patch_embed",
	[QP_KIND_LN_MEAN] = "layernorm.mean",
	[QP_KIND_LN_CENTERED] = "layernorm.centered",
	[QP_KIND_LN_SQUARE] = "layernorm.square",
	[QP_KIND_LN_VAR] = "layernorm.var",
	[QP_KIND_LN_RSTD] = "layernorm.rstd",
	[QP_KIND_LN_NORMALIZED] = "layernorm.normalized",
	[QP_KIND_LN_OUT] = "layernorm.out",
	[QP_KIND_ATTN_Q] = "attn.q",
	[QP_KIND_ATTN_K] = "attn.k",
	[QP_KIND_ATTN_V] = "attn.v",
	[QP_KIND_ATTN_Q_SCALED] = "attn.q_scaled",
	[QP_KIND_ATTN_QK] = "attn.qk",
	[QP_KIND_REL_POS_BIAS] = "attn.rel_pos_bias",
	[QP_KIND_ATTN_LOGITS] = "attn.logits",
	[QP_KIND_SOFTMAX_SUB_MAX] = "softmax.sub_max",
	[QP_KIND_SOFTMAX_EXP] = "softmax.exp",
	[QP_KIND_SOFTMAX_SUM] = "softmax.sum",
	[QP_KIND_SOFTMAX_RECIP] = "softmax.recip",
	[QP_KIND_SOFTMAX_OUT] = "softmax.out",
	[QP_KIND_ATTN_AV] = "attn.av",
	[QP_KIND_LINEAR] = "linear",
	[QP_KIND_GELU] = "gelu",
	[QP_KIND_RESIDUAL_ADD] = "add",
	[QP_KIND_MERGE_CONCAT] = "concat",
	[QP_KIND_POOL] = "pool",
	[QP_KIND_HEAD] = "head",
	[QP_KIND_WEIGHT] = "weight",
};

const char *qp_kind_name(enum qp_kind kind)
{
	return (unsigned)kind < QP_KIND_COUNT ? kind_names[kind] : "unknown";
}

int qp_kind_parse(const char *name, enum qp_kind *kind)
{
	for (int k = 0; k < QP_KIND_COUNT; k++)
		if (strcmp(kind_names[k], name) == 0) {
			*kind = (enum qp_kind)k;
			return 0;
		}
	return -1;
}

const char *qp_role_name(enum qp_role role)
{
	switch (role) {
	case QP_ROLE_ACTIVATION: return "activation";
	case QP_ROLE_AUX: return "aux";
	case QP_ROLE_WEIGHT: return "weight";
	}
	return "unknown";
}

struct builder {
	struct qp_table *t;
	int cap;
	bool oom;
};

static int add_point(struct builder *b, enum qp_kind kind, enum qp_role role,
		     int ndim, const int64_t *shape, const char *fmt, ...)
{
	struct qp_table *t = b->t;
	struct qp_point *p;
	va_list ap;

	if (b->oom)
		return -1;
	if (t->count == b->cap) {
		int ncap = b->cap ? 2 * b->cap : 256;
		struct qp_point *np = realloc(t->points, (size_t)ncap * sizeof(*np));
		if (!np) {
			b->oom = true;
			return -1;
		}
		t->points = np;
		b->cap = ncap;
	}
	p = &t->points[t->count];
	memset(p, 0, sizeof(*p));
	va_start(ap, fmt);
	vsnprintf(p->name, sizeof(p->name), fmt, ap);
	va_end(ap);
	p->kind = kind;
	p->role = role;
	p->ndim = ndim;
	p->numel = 1;
	for (int i = 0; i < ndim; i++) {
		p->shape[i] = shape[i];
		p->numel *= (size_t)shape[i];
	}
	p->param_index = -1;
	p->channels = 1;
	return t->count++;
}

#define SHAPE(...) ((const int64_t[]){ __VA_ARGS__ })
#define ACT(kind, ndim, shape, ...) \
	add_point(b, kind, QP_ROLE_ACTIVATION, ndim, shape, __VA_ARGS__)

static int add_weight(struct builder *b, const struct swin_param_table *params,
		      const char *name)
{
	int pi = swin_param_table_find(params, name);
	const struct swin_param_spec *s;
	int id;

	if (pi < 0) {
		b->oom = true; /* cannot happen for a table built from the same config */
		return -1;
	}
	s = &params->specs[pi];
	id = add_point(b, QP_KIND_WEIGHT, QP_ROLE_WEIGHT, s->ndim, s->shape, "%s", name);
	if (id >= 0) {
		b->t->points[id].param_index = pi;
		b->t->points[id].channels = (int)s->shape[0];
	}
	return id;
}

/* LayerNorm over T tokens of C channels, decomposed as the integer model runs it. */
static void add_layernorm(struct builder *b, struct qp_ln_ids *ids, int64_t T,
			  int64_t C, const char *prefix)
{
	ids->mean = ACT(QP_KIND_LN_MEAN, 1, SHAPE(T), "%s.mean", prefix);
	ids->centered = ACT(QP_KIND_LN_CENTERED, 2, SHAPE(T, C), "%s.centered", prefix);
	ids->square = ACT(QP_KIND_LN_SQUARE, 2, SHAPE(T, C), "%s.square", prefix);
	ids->var = ACT(QP_KIND_LN_VAR, 1, SHAPE(T), "%s.var", prefix);
	ids->rstd = ACT(QP_KIND_LN_RSTD, 1, SHAPE(T), "%s.rstd", prefix);
	ids->normalized = ACT(QP_KIND_LN_NORMALIZED, 2, SHAPE(T, C), "%s.normalized", prefix);
	ids->out = ACT(QP_KIND_LN_OUT, 2, SHAPE(T, C), "%s.out", prefix);
}

enum qcal_status qp_table_init(struct qp_table *t, const struct swin_config *c,
			       const struct swin_param_table *params,
			       struct qcal_err *err)
{
	struct builder bb = { .t = t }, *b = &bb;
	char pre[QP_NAME_MAX - 32], name[QP_NAME_MAX];
	int64_t N = (int64_t)c->window_size * c->window_size;
	int blk = 0;

	memset(t, 0, sizeof(*t));
	t->blocks = calloc((size_t)swin_total_blocks(c), sizeof(*t->blocks));
	if (!t->blocks)
		return qcal_err_set(err, QCAL_ENOMEM, "point table: out of memory");
	int64_t R0 = swin_stage_res(c, 0), E = c->embed_dim;
	t->input = ACT(QP_KIND_INPUT, 3, SHAPE(c->in_chans, c->img_size, c->img_size), "input");
	t->w_patch = add_weight(b, params, "features.0.0.weight");
	t->patch_embed = ACT(QP_KIND_PATCH_EMBED, 3, SHAPE(R0, R0, E), "features.0.0.out");
	add_layernorm(b, &t->patch_norm, R0 * R0, E, "features.0.2");
	for (int s = 0; s < c->num_stages; s++) {
		int64_t C = swin_stage_dim(c, s), NH = c->num_heads[s];
		int64_t R = swin_stage_res(c, s), Rp = swin_padded_res(c, s);
		int64_t nW = (Rp / c->window_size) * (Rp / c->window_size);
		int64_t Hd = swin_mlp_hidden(c, s), T = R * R;
		int f = swin_stage_feature_index(s);
		bool shifted_stage = swin_stage_shifts(c, s);
		for (int i = 0; i < c->depths[s]; i++, blk++) {
			struct qp_block_ids *ids = &t->blocks[blk];
			bool masked = shifted_stage && (i % 2 == 1);
			snprintf(pre, sizeof(pre), "features.%d.%d", f, i);
			snprintf(name, sizeof(name), "%s.norm1", pre);
			add_layernorm(b, &ids->norm1, T, C, name);
			snprintf(name, sizeof(name), "%s.attn.qkv.weight", pre);
			ids->w_qkv = add_weight(b, params, name);
			ids->q = ACT(QP_KIND_ATTN_Q, 3, SHAPE(nW, N, C), "%s.attn.q", pre);
			ids->k = ACT(QP_KIND_ATTN_K, 3, SHAPE(nW, N, C), "%s.attn.k", pre);
			ids->v = ACT(QP_KIND_ATTN_V, 3, SHAPE(nW, N, C), "%s.attn.v", pre);
			ids->q_scaled = ACT(QP_KIND_ATTN_Q_SCALED, 3, SHAPE(nW, N, C),
					    "%s.attn.q_scaled", pre);
			ids->qk = ACT(QP_KIND_ATTN_QK, 4, SHAPE(nW, NH, N, N), "%s.attn.qk", pre);
			ids->rel_pos_bias = add_point(b, QP_KIND_REL_POS_BIAS, QP_ROLE_AUX, 3,
						      SHAPE(NH, N, N),
						      "%s.attn.relative_position_bias", pre);
			ids->logits = ACT(QP_KIND_ATTN_LOGITS, 4, SHAPE(nW, NH, N, N),
					  "%s.attn.logits", pre);
			ids->sm_sub_max = ACT(QP_KIND_SOFTMAX_SUB_MAX, 4, SHAPE(nW, NH, N, N),
					      "%s.attn.softmax.sub_max", pre);
			ids->sm_exp = ACT(QP_KIND_SOFTMAX_EXP, 4, SHAPE(nW, NH, N, N),
					  "%s.attn.softmax.exp", pre);
			ids->sm_sum = ACT(QP_KIND_SOFTMAX_SUM, 3, SHAPE(nW, NH, N),
					  "%s.attn.softmax.sum", pre);
			ids->sm_recip = ACT(QP_KIND_SOFTMAX_RECIP, 3, SHAPE(nW, NH, N),
					    "%s.attn.softmax.recip", pre);
			ids->sm_out = ACT(QP_KIND_SOFTMAX_OUT, 4, SHAPE(nW, NH, N, N),
					  "%s.attn.softmax.out", pre);
			if (!b->oom && masked) {
				t->points[ids->sm_sub_max].maskable = true;
				t->points[ids->sm_exp].maskable = true;
			}
			ids->av = ACT(QP_KIND_ATTN_AV, 3, SHAPE(nW, N, C), "%s.attn.av", pre);
			snprintf(name, sizeof(name), "%s.attn.proj.weight", pre);
			ids->w_proj = add_weight(b, params, name);
			ids->proj = ACT(QP_KIND_LINEAR, 3, SHAPE(nW, N, C), "%s.attn.proj.out", pre);
			ids->add_attn = ACT(QP_KIND_RESIDUAL_ADD, 2, SHAPE(T, C), "%s.add_attn", pre);
			snprintf(name, sizeof(name), "%s.norm2", pre);
			add_layernorm(b, &ids->norm2, T, C, name);
			snprintf(name, sizeof(name), "%s.mlp.0.weight", pre);
			ids->w_fc1 = add_weight(b, params, name);
			ids->fc1 = ACT(QP_KIND_LINEAR, 2, SHAPE(T, Hd), "%s.mlp.0.out", pre);
			ids->gelu = ACT(QP_KIND_GELU, 2, SHAPE(T, Hd), "%s.mlp.1.out", pre);
			snprintf(name, sizeof(name), "%s.mlp.3.weight", pre);
			ids->w_fc2 = add_weight(b, params, name);
			ids->fc2 = ACT(QP_KIND_LINEAR, 2, SHAPE(T, C), "%s.mlp.3.out", pre);
			ids->add_mlp = ACT(QP_KIND_RESIDUAL_ADD, 2, SHAPE(T, C), "%s.add_mlp", pre);
		}
		if (s + 1 < c->num_stages) {
			struct qp_merge_ids *ids = &t->merges[s];
			int64_t R2 = swin_stage_res(c, s + 1);
			snprintf(pre, sizeof(pre), "features.%d", f + 1);
			ids->concat = ACT(QP_KIND_MERGE_CONCAT, 2, SHAPE(R2 * R2, 4 * C),
					  "%s.concat", pre);
			snprintf(name, sizeof(name), "%s.norm", pre);
			add_layernorm(b, &ids->norm, R2 * R2, 4 * C, name);
			snprintf(name, sizeof(name), "%s.reduction.weight", pre);
			ids->w_reduction = add_weight(b, params, name);
			ids->reduction = ACT(QP_KIND_LINEAR, 2, SHAPE(R2 * R2, 2 * C),
					     "%s.reduction.out", pre);
		}
	}
	int64_t Rf = swin_stage_res(c, c->num_stages - 1);
	int64_t Cf = swin_stage_dim(c, c->num_stages - 1);
	add_layernorm(b, &t->norm, Rf * Rf, Cf, "norm");
	t->pool = ACT(QP_KIND_POOL, 1, SHAPE(Cf), "avgpool.out");
	t->w_head = add_weight(b, params, "head.weight");
	t->head = ACT(QP_KIND_HEAD, 1, SHAPE(c->num_classes), "head.out");
	if (b->oom) {
		qp_table_free(t);
		return qcal_err_set(err, QCAL_ENOMEM, "point table: out of memory");
	}
	return QCAL_OK;
}

void qp_table_free(struct qp_table *t)
{
	if (!t)
		return;
	free(t->points);
	free(t->blocks);
	memset(t, 0, sizeof(*t));
}

int qp_table_find(const struct qp_table *t, const char *name)
{
	for (int i = 0; i < t->count; i++)
		if (strcmp(t->points[i].name, name) == 0)
			return i;
	return -1;
}

void qp_apply(const struct qp_ctx *ctx, int id, float *x, size_t n,
	      const uint8_t *keep)
{
	const struct qp_qparams *qp;

	if (!ctx || ctx->mode == QP_MODE_FLOAT)
		return;
	if (ctx->observe)
		ctx->observe(ctx->observe_user, id, x, n, keep);
	if (ctx->mode == QP_MODE_OBSERVE || !ctx->qparams)
		return;
	qp = &ctx->qparams[id];
	if (qp->dtype == QCAL_DTYPE_FLOAT)
		return;
	if (ctx->mode == QP_MODE_QAT && ctx->saved && ctx->saved[id]) {
		fq_per_tensor_keep_mt(x, ctx->saved[id], n, qp->scale, qp->zero_point,
				      qp->qmin, qp->qmax, ctx->threads);
		return;
	}
	fq_per_tensor_mt(x, n, qp->scale, qp->zero_point, qp->qmin, qp->qmax,
			 ctx->threads);
}
