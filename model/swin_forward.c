/*
 * Swin V1 forward: one implementation for every mode.
 *
 * The network is walked in torchvision's order (patch embed, stages of
 * blocks with patch merging between them, final norm, pool, head).  Each
 * tensor of the integer model passes through qp_apply(); on the float path
 * (no active qp_ctx) LayerNorm and window attention use fused kernels and
 * the decomposed intermediates are not even materialised.
 *
 * Memory: swin_plan_layout() is run twice, once to size the arena and once
 * to carve named pointers from it (llm.c style), so sizes and pointers come
 * from the same code.
 */
#include "model/swin_forward.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN_FLOATS 16

struct carver {
	float *base; /* NULL while sizing */
	size_t off;
};

static float *take(struct carver *cv, size_t n)
{
	float *p;

	if (n == 0)
		return NULL;
	p = cv->base ? cv->base + cv->off : NULL;
	cv->off += (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
	return p;
}

static void take_ln(struct carver *cv, struct swin_ln_acts *ln, size_t M,
		    size_t C, int decomposed)
{
	ln->mean = take(cv, M);
	ln->rstd = take(cv, M);
	ln->centered = take(cv, decomposed ? M * C : 0);
	ln->square = take(cv, decomposed ? M * C : 0);
	ln->var = take(cv, decomposed ? M : 0);
	ln->normalized = take(cv, decomposed ? M * C : 0);
	ln->out = take(cv, M * C);
}

static size_t plan_layout(struct swin_plan *p, float *base)
{
	const struct swin_config *c = &p->cfg;
	struct carver cv = { .base = base };
	int dec = (p->flags & SWIN_PLAN_DECOMPOSED) != 0;
	int train = (p->flags & SWIN_PLAN_TRAIN) != 0;
	size_t B = (size_t)p->batch, N = (size_t)c->window_size * c->window_size;
	size_t R0 = (size_t)swin_stage_res(c, 0), E = (size_t)c->embed_dim;
	size_t stream_max = 0, internal_max, internal_base;
	float *stream[2];
	int cur = 1, blk = 0;

	for (int s = 0; s < c->num_stages; s++) {
		size_t R = (size_t)swin_stage_res(c, s);
		size_t sz = B * R * R * (size_t)swin_stage_dim(c, s);
		if (sz > stream_max)
			stream_max = sz;
	}
	p->input = take(&cv, B * (size_t)c->in_chans * c->img_size * c->img_size);
	p->cols = take(&cv, B * R0 * R0 * (size_t)c->in_chans * c->patch_size * c->patch_size);
	p->patch = take(&cv, B * R0 * R0 * E);
	take_ln(&cv, &p->patch_norm, B * R0 * R0, E, dec);
	stream[0] = train ? NULL : take(&cv, stream_max);
	stream[1] = train ? NULL : take(&cv, stream_max);
	size_t attn_scratch = 0;
	for (int s = 0; s < c->num_stages; s++) {
		size_t need = op_window_attention_scratch((int)N, swin_stage_dim(c, s) / c->num_heads[s]);
		if (need > attn_scratch)
			attn_scratch = need;
	}
	p->attn_scratch = take(&cv, (size_t)p->threads * attn_scratch);
	for (int s = 0; s < c->num_stages; s++) {
		size_t Rp = (size_t)swin_padded_res(c, s), nw = (Rp / c->window_size) * (Rp / c->window_size);
		p->stages[s].mask_bias = swin_stage_shifts(c, s) ? take(&cv, nw * N * N) : NULL;
	}
	size_t mlp_scratch = 0;
	for (int s = 0; s < c->num_stages; s++) {
		size_t Hd = (size_t)swin_mlp_hidden(c, s);
		size_t need = (size_t)op_mlp_chunk_rows((int)Hd) * Hd;
		if (need > mlp_scratch)
			mlp_scratch = need;
	}
	p->mlp_scratch = take(&cv, dec || train ? 0 : (size_t)p->threads * mlp_scratch);
	internal_base = internal_max = cv.off;
	for (int s = 0; s < c->num_stages; s++) {
		size_t C = (size_t)swin_stage_dim(c, s), NH = (size_t)c->num_heads[s];
		size_t R = (size_t)swin_stage_res(c, s), Rp = (size_t)swin_padded_res(c, s);
		size_t M = B * R * R, Hd = (size_t)swin_mlp_hidden(c, s);
		size_t BW = B * (Rp / c->window_size) * (Rp / c->window_size);
		size_t att = BW * NH * N * N;
		for (int i = 0; i < c->depths[s]; i++, blk++) {
			struct swin_block_acts *a = &p->blocks[blk];
			if (!train)
				cv.off = internal_base;
			take_ln(&cv, &a->ln1, M, C, dec);
			a->xw = take(&cv, BW * N * C);
			a->qkv = take(&cv, dec ? 0 : BW * N * 3 * C);
			a->q = take(&cv, dec || train ? BW * N * C : 0);
			a->k = take(&cv, dec || train ? BW * N * C : 0);
			a->v = take(&cv, dec || train ? BW * N * C : 0);
			a->q_scaled = take(&cv, dec ? BW * N * C : 0);
			a->rel_bias = take(&cv, NH * N * N);
			a->qk = take(&cv, dec ? att : 0);
			a->logits = take(&cv, dec ? att : 0);
			a->sub_max = take(&cv, dec ? att : 0);
			a->exp = take(&cv, dec ? att : 0);
			a->attn = take(&cv, dec ? att : 0);
			a->sum = take(&cv, dec ? BW * NH * N : 0);
			a->recip = take(&cv, dec ? BW * NH * N : 0);
			a->av = take(&cv, BW * N * C);
			a->proj = take(&cv, BW * N * C);
			a->res1 = take(&cv, M * C);
			take_ln(&cv, &a->ln2, M, C, dec);
			/* the inference float path runs the MLP in cached chunks */
			a->fc1 = take(&cv, dec || train ? M * Hd : 0);
			a->gelu = take(&cv, dec || train ? M * Hd : 0);
			a->fc2 = take(&cv, dec || train ? M * C : 0);
			if (train) {
				a->out = take(&cv, M * C);
			} else {
				cur ^= 1;
				a->out = stream[cur];
			}
			if (cv.off > internal_max)
				internal_max = cv.off;
		}
		if (s + 1 < c->num_stages) {
			struct swin_merge_acts *m = &p->merges[s];
			size_t R2 = (size_t)swin_stage_res(c, s + 1), M2 = B * R2 * R2;
			if (!train)
				cv.off = internal_base;
			m->concat = take(&cv, M2 * 4 * C);
			take_ln(&cv, &m->ln, M2, 4 * C, dec);
			if (train) {
				m->out = take(&cv, M2 * 2 * C);
			} else {
				cur ^= 1;
				m->out = stream[cur];
			}
			if (cv.off > internal_max)
				internal_max = cv.off;
		}
	}
	cv.off = internal_max;
	size_t Rf = (size_t)swin_stage_res(c, c->num_stages - 1);
	size_t Cf = (size_t)swin_stage_dim(c, c->num_stages - 1);
	take_ln(&cv, &p->norm, B * Rf * Rf, Cf, dec);
	p->pool = take(&cv, B * Cf);
	p->logits = take(&cv, B * (size_t)c->num_classes);
	return cv.off;
}

enum qcal_status swin_plan_init(struct swin_plan *p, const struct swin_config *cfg,
				int batch, unsigned flags, int threads,
				const struct swin_kernels *kernels,
				struct qcal_err *err)
{
	size_t mask_bytes = 0;
	uint8_t *mask_cursor;

	memset(p, 0, sizeof(*p));
	if (batch < 1)
		return qcal_err_set(err, QCAL_EINVAL, "plan: batch %d, expected >= 1", batch);
	p->cfg = *cfg;
	p->cfg.class_names = NULL;
	p->cfg.num_class_names = 0;
	p->batch = batch;
	p->flags = flags;
	p->threads = threads >= 1 ? threads : omp_get_num_procs();
	p->kernels = kernels ? kernels : swin_kernels_blas();
	p->blocks = calloc((size_t)swin_total_blocks(cfg), sizeof(*p->blocks));
	if (!p->blocks)
		return qcal_err_set(err, QCAL_ENOMEM, "plan: out of memory");
	p->arena_floats = plan_layout(p, NULL);
	p->arena = aligned_alloc(64, p->arena_floats * sizeof(float));
	for (int s = 0; s < cfg->num_stages; s++) {
		struct swin_stage_geom *sg = &p->stages[s];
		int R = swin_stage_res(cfg, s);
		sg->shifts = swin_stage_shifts(cfg, s);
		swin_window_geom_init(&sg->geom, batch, R, R, swin_stage_dim(cfg, s),
				      cfg->window_size,
				      sg->shifts ? cfg->window_size / 2 : 0);
		if (sg->shifts) {
			size_t nn = (size_t)sg->geom.N * sg->geom.N;
			mask_bytes += (size_t)sg->geom.nW * nn;
			if (flags & SWIN_PLAN_DECOMPOSED)
				mask_bytes += (size_t)batch * sg->geom.nW * cfg->num_heads[s] * nn;
		}
	}
	p->mask_arena = malloc(mask_bytes ? mask_bytes : 1);
	if (!p->arena || !p->mask_arena) {
		size_t bytes = p->arena_floats * sizeof(float);
		swin_plan_free(p);
		return qcal_err_set(err, QCAL_ENOMEM,
				    "plan: cannot allocate %.1f MiB of activations for batch %d",
				    (double)bytes / (1 << 20), batch);
	}
	plan_layout(p, p->arena);
	mask_cursor = p->mask_arena;
	for (int s = 0; s < cfg->num_stages; s++) {
		struct swin_stage_geom *sg = &p->stages[s];
		if (!sg->shifts)
			continue;
		size_t nn = (size_t)sg->geom.N * sg->geom.N;
		sg->keep = mask_cursor;
		mask_cursor += (size_t)sg->geom.nW * nn;
		op_shift_keep_mask(sg->keep, &sg->geom);
		op_shift_mask_bias(sg->mask_bias, sg->keep, (size_t)sg->geom.nW * nn);
		if (flags & SWIN_PLAN_DECOMPOSED) {
			sg->keep_full = mask_cursor;
			mask_cursor += (size_t)batch * sg->geom.nW * cfg->num_heads[s] * nn;
			op_expand_keep(sg->keep_full, sg->keep, batch, sg->geom.nW,
				       cfg->num_heads[s], sg->geom.N);
		}
	}
	return QCAL_OK;
}

void swin_plan_free(struct swin_plan *p)
{
	if (!p)
		return;
	free(p->arena);
	free(p->mask_arena);
	free(p->blocks);
	memset(p, 0, sizeof(*p));
}

size_t swin_plan_bytes(const struct swin_plan *p)
{
	return p->arena_floats * sizeof(float);
}

/* LayerNorm over M rows of C, fused or step by step through the points. */
static void layernorm(struct swin_ln_acts *ln, const float *in, const float *w,
		      const float *b, int M, int C, const struct qp_ctx *ctx,
		      const struct qp_ln_ids *ids, int nt)
{
	size_t MC = (size_t)M * C;

	if (!qp_ctx_active(ctx)) {
		op_layernorm_forward(ln->out, ln->mean, ln->rstd, in, w, b, M, C, nt);
		return;
	}
	if (ctx->mode == QP_MODE_OBSERVE) {
		/* nothing is quantized between the steps: compute them in one pass */
		op_layernorm_steps_forward(ln->mean, ln->centered, ln->square, ln->var,
					   ln->rstd, ln->normalized, ln->out, in, w, b, M, C, nt);
		qp_apply(ctx, ids->mean, ln->mean, (size_t)M, NULL);
		qp_apply(ctx, ids->centered, ln->centered, MC, NULL);
		qp_apply(ctx, ids->square, ln->square, MC, NULL);
		qp_apply(ctx, ids->var, ln->var, (size_t)M, NULL);
		qp_apply(ctx, ids->rstd, ln->rstd, (size_t)M, NULL);
		qp_apply(ctx, ids->normalized, ln->normalized, MC, NULL);
		qp_apply(ctx, ids->out, ln->out, MC, NULL);
		return;
	}
	op_row_mean(ln->mean, in, M, C, nt);
	qp_apply(ctx, ids->mean, ln->mean, (size_t)M, NULL);
	op_row_sub(ln->centered, in, ln->mean, M, C, nt);
	qp_apply(ctx, ids->centered, ln->centered, MC, NULL);
	op_square(ln->square, ln->centered, MC, nt);
	qp_apply(ctx, ids->square, ln->square, MC, NULL);
	op_row_mean(ln->var, ln->square, M, C, nt);
	qp_apply(ctx, ids->var, ln->var, (size_t)M, NULL);
	op_rsqrt_eps(ln->rstd, ln->var, (size_t)M, SWIN_LN_EPS, nt);
	qp_apply(ctx, ids->rstd, ln->rstd, (size_t)M, NULL);
	op_row_scale(ln->normalized, ln->centered, ln->rstd, M, C, nt);
	qp_apply(ctx, ids->normalized, ln->normalized, MC, NULL);
	op_affine(ln->out, ln->normalized, w, b, M, C, nt);
	qp_apply(ctx, ids->out, ln->out, MC, NULL);
}

static void block_forward(struct swin_plan *p, struct swin_block_acts *a,
			  const struct swin_block_weights *w,
			  const struct qp_block_ids *ids,
			  const struct swin_window_geom *g, int NH,
			  const uint8_t *keep, const uint8_t *keep_full,
			  const float *mask_bias, const int32_t *rel_index, int Hd,
			  const struct qp_ctx *ctx)
{
	const struct swin_kernels *kk = p->kernels;
	int nt = p->threads, C = g->C, N = g->N, D = C / NH;
	int M = g->B * g->H * g->W, BW = g->B * g->nW;
	size_t MC = (size_t)M * C, WC = (size_t)BW * N * C;
	size_t att = (size_t)BW * NH * N * N;
	int active = qp_ctx_active(ctx);
	float scale = (float)(1.0 / sqrt((double)D));

	if (!active && !(p->flags & SWIN_PLAN_TRAIN)) {
		op_layernorm_windows_forward(a->xw, a->in, w->norm1_w, w->norm1_b, g, nt);
	} else {
		layernorm(&a->ln1, a->in, w->norm1_w, w->norm1_b, M, C, ctx, &ids->norm1, nt);
		op_window_partition(a->xw, a->ln1.out, g, nt);
	}
	op_gather_rel_bias(a->rel_bias, w->rel_pos_table, rel_index, NH, N);
	if (!active) {
		op_linear_forward(a->qkv, a->xw, w->qkv_w, w->qkv_b, BW * N, C, 3 * C, kk, nt);
		/* Attention reads q, k, v in place from qkv; only a training plan
		 * keeps split copies (q already scaled) for the backward. */
		op_scale_columns(a->qkv, (size_t)BW * N, 3 * C, C, scale, nt);
		if (p->flags & SWIN_PLAN_TRAIN)
			op_split_qkv(a->q, a->k, a->v, a->qkv, (size_t)BW * N, C, nt);
		op_window_attention_forward(a->av, p->attn_scratch, a->qkv, a->qkv + C,
					    a->qkv + 2 * C, 3 * C, a->rel_bias,
					    mask_bias, BW, g->nW, NH, N, C, kk, nt);
	} else {
		/* q, k and v are separate points: project them straight into their
		 * own buffers (row blocks of the qkv weight) instead of splitting. */
		size_t CC = (size_t)C * C;
		op_linear_forward(a->q, a->xw, w->qkv_w, w->qkv_b, BW * N, C, C, kk, nt);
		op_linear_forward(a->k, a->xw, w->qkv_w + CC, w->qkv_b + C, BW * N, C, C, kk, nt);
		op_linear_forward(a->v, a->xw, w->qkv_w + 2 * CC, w->qkv_b + 2 * C, BW * N, C, C, kk, nt);
		qp_apply(ctx, ids->q, a->q, WC, NULL);
		qp_apply(ctx, ids->k, a->k, WC, NULL);
		qp_apply(ctx, ids->v, a->v, WC, NULL);
		op_scale(a->q_scaled, a->q, scale, WC, nt);
		qp_apply(ctx, ids->q_scaled, a->q_scaled, WC, NULL);
		op_attn_qk(a->qk, p->attn_scratch, a->q_scaled, a->k, BW, NH, N, C, kk, nt);
		qp_apply(ctx, ids->qk, a->qk, att, NULL);
		qp_apply(ctx, ids->rel_pos_bias, a->rel_bias, (size_t)NH * N * N, NULL);
		op_add_bias_heads(a->logits, a->qk, a->rel_bias, BW, NH, N, nt);
		qp_apply(ctx, ids->logits, a->logits, att, NULL);
		if (ctx->mode == QP_MODE_OBSERVE) {
			op_softmax_steps_forward(a->sub_max, a->exp, a->sum, a->recip, a->attn,
						 a->logits, keep, BW, g->nW, NH, N, nt);
			qp_apply(ctx, ids->sm_sub_max, a->sub_max, att, keep_full);
			qp_apply(ctx, ids->sm_exp, a->exp, att, keep_full);
			qp_apply(ctx, ids->sm_sum, a->sum, (size_t)BW * NH * N, NULL);
			qp_apply(ctx, ids->sm_recip, a->recip, (size_t)BW * NH * N, NULL);
			qp_apply(ctx, ids->sm_out, a->attn, att, NULL);
		} else {
			op_softmax_sub_max(a->sub_max, a->logits, keep, BW, g->nW, NH, N, nt);
			qp_apply(ctx, ids->sm_sub_max, a->sub_max, att, keep_full);
			op_softmax_exp(a->exp, a->sub_max, keep, BW, g->nW, NH, N, nt);
			qp_apply(ctx, ids->sm_exp, a->exp, att, keep_full);
			op_row_sum(a->sum, a->exp, (size_t)BW * NH * N, N, nt);
			qp_apply(ctx, ids->sm_sum, a->sum, (size_t)BW * NH * N, NULL);
			op_reciprocal(a->recip, a->sum, (size_t)BW * NH * N, nt);
			qp_apply(ctx, ids->sm_recip, a->recip, (size_t)BW * NH * N, NULL);
			op_row_scale(a->attn, a->exp, a->recip, BW * NH * N, N, nt);
			qp_apply(ctx, ids->sm_out, a->attn, att, NULL);
		}
		op_attn_av(a->av, a->attn, a->v, BW, NH, N, C, kk, nt);
		qp_apply(ctx, ids->av, a->av, WC, NULL);
	}
	op_linear_forward(a->proj, a->av, w->proj_w, w->proj_b, BW * N, C, C, kk, nt);
	qp_apply(ctx, ids->proj, a->proj, WC, NULL);
	op_window_reverse_add(a->res1, a->in, a->proj, g, nt);
	qp_apply(ctx, ids->add_attn, a->res1, MC, NULL);
	layernorm(&a->ln2, a->res1, w->norm2_w, w->norm2_b, M, C, ctx, &ids->norm2, nt);
	if (!active && !(p->flags & SWIN_PLAN_TRAIN)) {
		op_mlp_residual_forward(a->out, a->res1, a->ln2.out, w->fc1_w, w->fc1_b,
					w->fc2_w, w->fc2_b, M, C, Hd, p->mlp_scratch,
					kk, nt);
		return;
	}
	op_linear_forward(a->fc1, a->ln2.out, w->fc1_w, w->fc1_b, M, C, Hd, kk, nt);
	qp_apply(ctx, ids->fc1, a->fc1, (size_t)M * Hd, NULL);
	op_gelu_forward(a->gelu, a->fc1, (size_t)M * Hd, nt);
	qp_apply(ctx, ids->gelu, a->gelu, (size_t)M * Hd, NULL);
	op_linear_forward(a->fc2, a->gelu, w->fc2_w, w->fc2_b, M, Hd, C, kk, nt);
	qp_apply(ctx, ids->fc2, a->fc2, MC, NULL);
	op_add(a->out, a->res1, a->fc2, MC, nt);
	qp_apply(ctx, ids->add_mlp, a->out, MC, NULL);
}

enum qcal_status swin_forward(struct swin_plan *p, const struct swin_model *model,
			      const struct swin_weights *w,
			      const struct qp_ctx *ctx, const float *input,
			      int B, struct qcal_err *err)
{
	const struct swin_config *c = &p->cfg;
	const struct qp_table *qt = ctx ? ctx->table : NULL;
	const struct swin_kernels *kk = p->kernels;
	int nt = p->threads, blk = 0;
	int R0 = swin_stage_res(c, 0), E = c->embed_dim;
	size_t in_numel = (size_t)B * c->in_chans * c->img_size * c->img_size;
	const float *x;
	/* Point ids are only read when ctx is active; the float path uses these. */
	static const struct qp_block_ids no_block_ids;

	if (B < 1 || B > p->batch)
		return qcal_err_set(err, QCAL_EINVAL,
				    "forward: batch %d, plan holds 1..%d", B, p->batch);
	if (qp_ctx_active(ctx) && !(p->flags & SWIN_PLAN_DECOMPOSED))
		return qcal_err_set(err, QCAL_EINVAL,
				    "forward: quantization mode needs a decomposed plan");
	if (qp_ctx_active(ctx) && !qt)
		return qcal_err_set(err, QCAL_EINVAL, "forward: qp_ctx without a point table");
	if (model->cfg.img_size != c->img_size || model->table.numel == 0)
		return qcal_err_set(err, QCAL_EINVAL, "forward: model does not match the plan");
	if (!w)
		w = &model->w;

	memcpy(p->input, input, in_numel * sizeof(float));
	if (qt)
		qp_apply(ctx, qt->input, p->input, in_numel, NULL);
	op_patch_embed_forward(p->patch, p->cols, p->input, w->patch_w, w->patch_b,
			       B, c->in_chans, c->img_size, c->img_size,
			       c->patch_size, E, kk, nt);
	if (qt)
		qp_apply(ctx, qt->patch_embed, p->patch, (size_t)B * R0 * R0 * E, NULL);
	layernorm(&p->patch_norm, p->patch, w->patch_norm_w, w->patch_norm_b,
		  B * R0 * R0, E, ctx, qt ? &qt->patch_norm : NULL, nt);
	x = p->patch_norm.out;
	for (int s = 0; s < c->num_stages; s++) {
		struct swin_stage_geom *sg = &p->stages[s];
		struct swin_window_geom plain, shifted;
		int C = swin_stage_dim(c, s), R = swin_stage_res(c, s);
		swin_window_geom_init(&plain, B, R, R, C, c->window_size, 0);
		swin_window_geom_init(&shifted, B, R, R, C, c->window_size,
				      sg->shifts ? c->window_size / 2 : 0);
		for (int i = 0; i < c->depths[s]; i++, blk++) {
			struct swin_block_acts *a = &p->blocks[blk];
			int odd = (i % 2 == 1) && sg->shifts;
			a->in = (float *)x;
			block_forward(p, a, &w->blocks[blk], qt ? &qt->blocks[blk] : &no_block_ids,
				      odd ? &shifted : &plain, c->num_heads[s],
				      odd ? sg->keep : NULL, odd ? sg->keep_full : NULL,
				      odd ? sg->mask_bias : NULL, model->rel_index, swin_mlp_hidden(c, s), ctx);
			x = a->out;
		}
		if (s + 1 < c->num_stages) {
			struct swin_merge_acts *m = &p->merges[s];
			const struct qp_merge_ids *ids = qt ? &qt->merges[s] : NULL;
			int R2 = swin_stage_res(c, s + 1), M2 = B * R2 * R2;
			op_merge_gather(m->concat, x, B, R, R, C, nt);
			if (ids)
				qp_apply(ctx, ids->concat, m->concat, (size_t)M2 * 4 * C, NULL);
			layernorm(&m->ln, m->concat, w->merges[s].norm_w, w->merges[s].norm_b,
				  M2, 4 * C, ctx, ids ? &ids->norm : NULL, nt);
			op_linear_forward(m->out, m->ln.out, w->merges[s].reduction_w, NULL,
					  M2, 4 * C, 2 * C, kk, nt);
			if (ids)
				qp_apply(ctx, ids->reduction, m->out, (size_t)M2 * 2 * C, NULL);
			x = m->out;
		}
	}
	int Rf = swin_stage_res(c, c->num_stages - 1);
	int Cf = swin_stage_dim(c, c->num_stages - 1), Tf = Rf * Rf;
	layernorm(&p->norm, x, w->norm_w, w->norm_b, B * Tf, Cf, ctx,
		  qt ? &qt->norm : NULL, nt);
	op_avgpool_forward(p->pool, p->norm.out, B, Tf, Cf);
	if (qt)
		qp_apply(ctx, qt->pool, p->pool, (size_t)B * Cf, NULL);
	op_linear_forward(p->logits, p->pool, w->head_w, w->head_b, B, Cf,
			  c->num_classes, kk, nt);
	if (qt)
		qp_apply(ctx, qt->head, p->logits, (size_t)B * c->num_classes, NULL);
	return QCAL_OK;
}

const float *swin_plan_feature(const struct swin_plan *p, int index,
			       size_t *numel_per_image)
{
	const struct swin_config *c = &p->cfg;
	int blk = 0;

	if (index == 0) {
		int R0 = swin_stage_res(c, 0);
		*numel_per_image = (size_t)R0 * R0 * c->embed_dim;
		return p->patch_norm.out;
	}
	for (int s = 0; s < c->num_stages; s++) {
		int R = swin_stage_res(c, s);
		blk += c->depths[s];
		if (index == swin_stage_feature_index(s)) {
			*numel_per_image = (size_t)R * R * swin_stage_dim(c, s);
			return p->blocks[blk - 1].out;
		}
		if (s + 1 < c->num_stages && index == swin_stage_feature_index(s) + 1) {
			int R2 = swin_stage_res(c, s + 1);
			*numel_per_image = (size_t)R2 * R2 * 2 * swin_stage_dim(c, s);
			return p->merges[s].out;
		}
	}
	return NULL;
}
