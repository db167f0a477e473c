/*
 * Parameter table construction.  The order is the order of torchvision's
 * state_dict (features.0 patch embed, then for each stage its blocks and the
 * patch merging, then norm and head); binding walks the same order, so names
 * and pointers cannot drift apart.
 */
#include "model/swin_params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct table_builder {
	struct swin_param_table *t;
	int cap;
	enum qcal_status st;
};

static void add(struct table_builder *b, enum swin_param_kind kind, int ndim,
		const int64_t *shape, const char *fmt, ...)
{
	struct swin_param_table *t = b->t;
	struct swin_param_spec *s;
	va_list ap;

	if (b->st != QCAL_OK)
		return;
	if (t->count == b->cap) {
		int ncap = b->cap ? b->cap * 2 : 64;
		struct swin_param_spec *ns = realloc(t->specs, (size_t)ncap * sizeof(*ns));
		if (!ns) {
			b->st = QCAL_ENOMEM;
			return;
		}
		t->specs = ns;
		b->cap = ncap;
	}
	s = &t->specs[t->count++];
	memset(s, 0, sizeof(*s));
	va_start(ap, fmt);
	vsnprintf(s->name, sizeof(s->name), fmt, ap);
	va_end(ap);
	s->kind = kind;
	s->ndim = ndim;
	s->numel = 1;
	for (int i = 0; i < ndim; i++) {
		s->shape[i] = shape[i];
		s->numel *= (size_t)shape[i];
	}
	s->offset = t->numel;
	t->numel += s->numel;
}

#define SHAPE(...) ((const int64_t[]){ __VA_ARGS__ })

static void add_norm(struct table_builder *b, int64_t dim, const char *prefix)
{
	add(b, SWIN_PARAM_NORM_WEIGHT, 1, SHAPE(dim), "%s.weight", prefix);
	add(b, SWIN_PARAM_NORM_BIAS, 1, SHAPE(dim), "%s.bias", prefix);
}

static void add_linear(struct table_builder *b, int64_t out, int64_t in,
		       int bias, const char *prefix)
{
	add(b, SWIN_PARAM_LINEAR_WEIGHT, 2, SHAPE(out, in), "%s.weight", prefix);
	if (bias)
		add(b, SWIN_PARAM_BIAS, 1, SHAPE(out), "%s.bias", prefix);
}

enum qcal_status swin_param_table_init(struct swin_param_table *t,
				       const struct swin_config *c,
				       struct qcal_err *err)
{
	struct table_builder b = { .t = t };
	int64_t E = c->embed_dim, P = c->patch_size, WS = c->window_size;
	char prefix[SWIN_TENSOR_NAME_MAX];

	memset(t, 0, sizeof(*t));
	add(&b, SWIN_PARAM_CONV_WEIGHT, 4, SHAPE(E, c->in_chans, P, P),
	    "features.0.0.weight");
	add(&b, SWIN_PARAM_BIAS, 1, SHAPE(E), "features.0.0.bias");
	add_norm(&b, E, "features.0.2");
	for (int s = 0; s < c->num_stages; s++) {
		int64_t C = swin_stage_dim(c, s), NH = c->num_heads[s];
		int64_t Hd = swin_mlp_hidden(c, s);
		int f = swin_stage_feature_index(s);
		for (int i = 0; i < c->depths[s]; i++) {
			snprintf(prefix, sizeof(prefix), "features.%d.%d.norm1", f, i);
			add_norm(&b, C, prefix);
			snprintf(prefix, sizeof(prefix), "features.%d.%d.attn.qkv", f, i);
			add_linear(&b, 3 * C, C, 1, prefix);
			snprintf(prefix, sizeof(prefix), "features.%d.%d.attn.proj", f, i);
			add_linear(&b, C, C, 1, prefix);
			add(&b, SWIN_PARAM_REL_POS_TABLE, 2,
			    SHAPE((2 * WS - 1) * (2 * WS - 1), NH),
			    "features.%d.%d.attn.relative_position_bias_table", f, i);
			snprintf(prefix, sizeof(prefix), "features.%d.%d.norm2", f, i);
			add_norm(&b, C, prefix);
			snprintf(prefix, sizeof(prefix), "features.%d.%d.mlp.0", f, i);
			add_linear(&b, Hd, C, 1, prefix);
			snprintf(prefix, sizeof(prefix), "features.%d.%d.mlp.3", f, i);
			add_linear(&b, C, Hd, 1, prefix);
		}
		if (s + 1 < c->num_stages) {
			snprintf(prefix, sizeof(prefix), "features.%d.norm", f + 1);
			add_norm(&b, 4 * C, prefix);
			snprintf(prefix, sizeof(prefix), "features.%d.reduction", f + 1);
			add_linear(&b, 2 * C, 4 * C, 0, prefix);
		}
	}
	int64_t Cf = swin_stage_dim(c, c->num_stages - 1);
	add_norm(&b, Cf, "norm");
	add_linear(&b, c->num_classes, Cf, 1, "head");
	if (b.st != QCAL_OK) {
		swin_param_table_free(t);
		return qcal_err_set(err, b.st, "parameter table: out of memory");
	}
	return QCAL_OK;
}

void swin_param_table_free(struct swin_param_table *t)
{
	if (!t)
		return;
	free(t->specs);
	memset(t, 0, sizeof(*t));
}

int swin_param_table_find(const struct swin_param_table *t, const char *name)
{
	for (int i = 0; i < t->count; i++)
		if (strcmp(t->specs[i].name, name) == 0)
			return i;
	return -1;
}

enum qcal_status swin_weights_bind(struct swin_weights *w,
				   const struct swin_config *c,
				   const struct swin_param_table *t, float *base)
{
	int k = 0, blk = 0;
#define NEXT() (base + t->specs[k++].offset)

	memset(w, 0, sizeof(*w));
	w->blocks = calloc((size_t)swin_total_blocks(c), sizeof(*w->blocks));
	if (!w->blocks)
		return QCAL_ENOMEM;
	w->patch_w = NEXT();
	w->patch_b = NEXT();
	w->patch_norm_w = NEXT();
	w->patch_norm_b = NEXT();
	for (int s = 0; s < c->num_stages; s++) {
		for (int i = 0; i < c->depths[s]; i++) {
			struct swin_block_weights *bw = &w->blocks[blk++];
			bw->norm1_w = NEXT();
			bw->norm1_b = NEXT();
			bw->qkv_w = NEXT();
			bw->qkv_b = NEXT();
			bw->proj_w = NEXT();
			bw->proj_b = NEXT();
			bw->rel_pos_table = NEXT();
			bw->norm2_w = NEXT();
			bw->norm2_b = NEXT();
			bw->fc1_w = NEXT();
			bw->fc1_b = NEXT();
			bw->fc2_w = NEXT();
			bw->fc2_b = NEXT();
		}
		if (s + 1 < c->num_stages) {
			w->merges[s].norm_w = NEXT();
			w->merges[s].norm_b = NEXT();
			w->merges[s].reduction_w = NEXT();
		}
	}
	w->norm_w = NEXT();
	w->norm_b = NEXT();
	w->head_w = NEXT();
	w->head_b = NEXT();
#undef NEXT
	return k == t->count ? QCAL_OK : QCAL_ESTATE;
}

void swin_weights_unbind(struct swin_weights *w)
{
	if (!w)
		return;
	free(w->blocks);
	memset(w, 0, sizeof(*w));
}

void swin_relative_position_index(int ws, int32_t *index)
{
	int n = ws * ws;

	for (int i = 0; i < n; i++) {
		int hi = i / ws, wi = i % ws;
		for (int j = 0; j < n; j++) {
			int hj = j / ws, wj = j % ws;
			int dh = hi - hj + ws - 1, dw = wi - wj + ws - 1;
			index[i * n + j] = dh * (2 * ws - 1) + dw;
		}
	}
}
