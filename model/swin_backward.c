/*
 * Swin V1 backward: the forward of swin_forward.c walked in reverse.
 *
 * The stream gradient lives in one of two buffers: a block turns d(block
 * output) into d(block input) in place (its residual passes straight
 * through), a patch merge writes the other buffer; the block's internal
 * gradients use the shared d-buffers of the backward plan.  Every
 * kernel accumulates, so each d-buffer is zeroed right before the first
 * kernel that adds into it.  A quantization point's backward is applied in
 * place to the gradient of its (post-quant) tensor, turning it into the
 * gradient of the pre-quant tensor, exactly where the forward called
 * qp_apply; the fused LayerNorm and attention kernels apply it inside.
 * (A d-buffer whose first producer is a GEMM is written by it directly,
 * see linear_backward_set.)
 *
 * Memory: the d-buffers are carved from one arena by bw_layout(), run once
 * to size it and once to carve it (as the forward plans its arena).
 */
#include "model/swin_backward.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/fakequant_backward.h"
#include "model/swin_ops_backward.h"

#define ALIGN_FLOATS 16

struct carver {
	float *base;
	size_t off;
};

static float *take(struct carver *cv, size_t n)
{
	float *p = cv->base ? cv->base + cv->off : NULL;

	cv->off += (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
	return p;
}

static size_t max_sz(size_t a, size_t b)
{
	return a > b ? a : b;
}

static size_t bw_layout(struct swin_backward_plan *bp, const struct swin_config *c,
			float *base)
{
	struct carver cv = { .base = base };
	size_t B = (size_t)bp->batch, N = (size_t)c->window_size * c->window_size;
	size_t R0 = (size_t)swin_stage_res(c, 0), E = (size_t)c->embed_dim;
	size_t K0 = (size_t)c->in_chans * c->patch_size * c->patch_size;
	size_t stream = B * R0 * R0 * E, tok = stream, hid = 0, win = 0, bias = 0;
	size_t lnw = E, attn = 0;
	int Sn = c->num_stages;

	for (int s = 0; s < Sn; s++) {
		size_t C = (size_t)swin_stage_dim(c, s), R = (size_t)swin_stage_res(c, s);
		size_t Rp = (size_t)swin_padded_res(c, s), NH = (size_t)c->num_heads[s];
		size_t BW = B * (Rp / c->window_size) * (Rp / c->window_size);
		size_t D = C / NH;
		stream = max_sz(stream, B * R * R * C);
		tok = max_sz(tok, B * R * R * C);
		hid = max_sz(hid, B * R * R * (size_t)swin_mlp_hidden(c, s));
		win = max_sz(win, BW * N * C);
		bias = max_sz(bias, NH * N * N);
		lnw = max_sz(lnw, C);
		attn = max_sz(attn, op_window_attention_backward_scratch((int)N, (int)D, (int)NH));
		attn = max_sz(attn, op_attention_steps_backward_scratch((int)N, (int)D, (int)NH));
		if (s + 1 < Sn) {
			size_t R2 = (size_t)swin_stage_res(c, s + 1);
			tok = max_sz(tok, B * R2 * R2 * 4 * C);
			stream = max_sz(stream, B * R2 * R2 * 2 * C);
			lnw = max_sz(lnw, 4 * C);
		}
	}
	bp->attn_scratch_per_thread = attn;
	bp->dstream[0] = take(&cv, stream);
	bp->dstream[1] = take(&cv, stream);
	bp->dtok = take(&cv, tok);
	bp->dtok2 = take(&cv, tok);
	bp->dhid = take(&cv, hid);
	bp->dwin[0] = take(&cv, win);
	bp->dwin[1] = take(&cv, win);
	bp->dqkv = take(&cv, 3 * win);
	bp->dbias = take(&cv, bias);
	bp->dimg = take(&cv, B * (size_t)c->in_chans * c->img_size * c->img_size);
	bp->dcols = take(&cv, B * R0 * R0 * K0);
	bp->dlogits = take(&cv, B * (size_t)c->num_classes);
	bp->dpool = take(&cv, B * (size_t)swin_stage_dim(c, Sn - 1));
	bp->ln_scratch = take(&cv, (size_t)bp->threads *
			      max_sz(op_layernorm_backward_scratch((int)lnw),
				     op_layernorm_steps_backward_scratch((int)lnw)));
	bp->attn_scratch = take(&cv, (size_t)bp->threads * attn);
	return cv.off;
}

enum qcal_status swin_backward_plan_init(struct swin_backward_plan *bp,
					 const struct swin_plan *plan,
					 struct qcal_err *err)
{
	memset(bp, 0, sizeof(*bp));
	if (!(plan->flags & SWIN_PLAN_TRAIN))
		return qcal_err_set(err, QCAL_EINVAL,
				    "backward plan: the forward plan lacks SWIN_PLAN_TRAIN "
				    "(its blocks share activations)");
	bp->batch = plan->batch;
	bp->threads = plan->threads;
	bp->flags = plan->flags;
	bp->arena_floats = bw_layout(bp, &plan->cfg, NULL);
	bp->arena = aligned_alloc(64, bp->arena_floats * sizeof(float));
	if (!bp->arena) {
		size_t bytes = bp->arena_floats * sizeof(float);
		memset(bp, 0, sizeof(*bp));
		return qcal_err_set(err, QCAL_ENOMEM,
				    "backward plan: cannot allocate %.1f MiB of gradients for batch %d",
				    (double)bytes / (1 << 20), plan->batch);
	}
	bw_layout(bp, &plan->cfg, bp->arena);
	return QCAL_OK;
}

void swin_backward_plan_free(struct swin_backward_plan *bp)
{
	if (!bp)
		return;
	free(bp->arena);
	memset(bp, 0, sizeof(*bp));
}

size_t swin_backward_plan_bytes(const struct swin_backward_plan *bp)
{
	return bp->arena_floats * sizeof(float);
}

/* ---- quantization points in the backward ---- */

struct bctx {
	const struct qp_ctx *ctx;   /* NULL on the float path */
	int nt;
};

static bool point_quantized(const struct qp_ctx *ctx, int id)
{
	return ctx && (ctx->mode == QP_MODE_QAT || ctx->mode == QP_MODE_FAKEQUANT) &&
	       ctx->qparams && ctx->qparams[id].dtype != QCAL_DTYPE_FLOAT;
}

double swin_point_grad_factor(const struct qp_point *pt, const struct qp_qparams *qp)
{
	return fq_lsq_grad_factor(pt->numel, qp->qmax);
}

/* The backward view of point id: pre NULL when it is not quantized. */
static struct fq_bwd point_bwd(const struct qp_ctx *ctx, int id)
{
	struct fq_bwd p = { 0 };

	if (!point_quantized(ctx, id))
		return p;
	const struct qp_qparams *qp = &ctx->qparams[id];
	fq_bwd_init(&p, ctx->saved[id], qp->scale, qp->zero_point, qp->qmin, qp->qmax,
		    ctx->learnable && ctx->dscale && ctx->learnable[id]);
	return p;
}

static void add_dscale(const struct qp_ctx *ctx, int id, double acc)
{
	if (!point_quantized(ctx, id) || !ctx->learnable || !ctx->dscale ||
	    !ctx->learnable[id])
		return;
	ctx->dscale[id] += (float)(swin_point_grad_factor(&ctx->table->points[id],
							  &ctx->qparams[id]) * acc);
}

/* d (n) becomes the gradient of point id's pre-quant tensor, in place. */
static void point_backward(const struct bctx *b, int id, float *d, size_t n,
			   const uint8_t *keep)
{
	if (!point_quantized(b->ctx, id))
		return;
	struct fq_bwd p = point_bwd(b->ctx, id);
	add_dscale(b->ctx, id, fq_bwd_tensor(d, d, &p, n, keep, b->nt));
}

/* Zero n floats. */
static void zero(float *x, size_t n)
{
	memset(x, 0, n * sizeof(float));
}

/*
 * A linear layer's backward whose input gradient is the first write into a
 * fresh d-buffer: din (M, K) = dout (M, N) @ w (N, K) straight from the GEMM
 * (beta = 0), sparing the zeroing pass op_linear_backward's accumulation
 * would need; dw, db accumulate as usual.
 */
static void linear_backward_set(float *din, float *dw, float *db, const float *dout,
				const float *in, const float *w, int M, int K, int N,
				const struct swin_kernels *kk, int nt)
{
	kk->gemm(false, false, M, K, N, 1.0f, dout, N, w, K, 0.0f, din, K, nt);
	op_linear_backward(NULL, dw, db, dout, in, w, M, K, N, kk, nt);
}

/* LayerNorm backward: fused on the float path, step by step otherwise. */
static void ln_backward(const struct swin_backward_plan *bp, const struct bctx *b,
			const struct swin_ln_acts *ln, const struct qp_ln_ids *ids,
			float *din, float *dw, float *db, const float *dout,
			const float *in, const float *w, int M, int C)
{
	if (!b->ctx) {
		op_layernorm_backward(din, dw, db, dout, in, ln->mean, ln->rstd, w, bp->ln_scratch,
				      M, C, b->nt);
		return;
	}
	const int id[LN_POINTS] = {
		[LN_MEAN] = ids->mean, [LN_CENTERED] = ids->centered,
		[LN_SQUARE] = ids->square, [LN_VAR] = ids->var, [LN_RSTD] = ids->rstd,
		[LN_NORMALIZED] = ids->normalized, [LN_OUT] = ids->out,
	};
	struct fq_bwd fq[LN_POINTS];
	double acc[LN_POINTS] = { 0 };
	for (int i = 0; i < LN_POINTS; i++)
		fq[i] = point_bwd(b->ctx, id[i]);
	op_layernorm_steps_backward(din, dw, db, acc, dout, ln->centered, ln->var,
				    ln->rstd, ln->normalized, w, fq, bp->ln_scratch,
				    M, C, b->nt);
	for (int i = 0; i < LN_POINTS; i++)
		add_dscale(b->ctx, id[i], acc[i]);
}

/* The forward's block_forward in reverse, in place: dY (M, C) holds
 * d(block out) on entry, d(res1) midway and d(block in) on exit (the
 * residual's gradient passes through unchanged, LN1's adds to it). */
static void block_backward(const struct swin_backward_plan *bp, const struct bctx *b,
			   const struct swin_plan *p, const struct swin_block_acts *a,
			   const struct swin_block_weights *w,
			   const struct swin_block_weights *dw,
			   const struct qp_block_ids *ids,
			   const struct swin_window_geom *g, int NH,
			   const uint8_t *keep, const float *mask_bias,
			   const int32_t *rel_index, int Hd, float *dY)
{
	const struct swin_kernels *kk = p->kernels;
	int nt = b->nt, C = g->C, N = g->N, D = C / NH;
	int M = g->B * g->H * g->W, BW = g->B * g->nW, rows = BW * N;
	size_t MC = (size_t)M * C, WC = (size_t)rows * C, MH = (size_t)M * Hd;
	float scale = (float)(1.0 / sqrt((double)D));
	float *dfc2 = dY;

	/* out = res1 + fc2 (add_mlp point) */
	point_backward(b, ids->add_mlp, dY, MC, NULL);
	if (point_quantized(b->ctx, ids->fc2)) {
		struct fq_bwd q = point_bwd(b->ctx, ids->fc2);
		add_dscale(b->ctx, ids->fc2, fq_bwd_tensor(bp->dtok, dY, &q, MC, NULL, nt));
		dfc2 = bp->dtok;
	}
	/* fc2 = gelu @ W2^T + b2; gelu = GELU(fc1); fc1 = ln2 @ W1^T + b1 */
	linear_backward_set(bp->dhid, dw->fc2_w, dw->fc2_b, dfc2, a->gelu, w->fc2_w,
			    M, Hd, C, kk, nt);
	if (!b->ctx) {
		op_gelu_backward_inplace(bp->dhid, a->fc1, a->gelu, MH, nt);
	} else {
		struct fq_bwd fg = point_bwd(b->ctx, ids->gelu), ff = point_bwd(b->ctx, ids->fc1);
		double acc[2] = { 0 };
		op_gelu_steps_backward(bp->dhid, a->fc1, fg.pre ? fg.pre : a->gelu, &fg, &ff, acc,
				       MH, nt);
		add_dscale(b->ctx, ids->gelu, acc[0]);
		add_dscale(b->ctx, ids->fc1, acc[1]);
	}
	linear_backward_set(bp->dtok2, dw->fc1_w, dw->fc1_b, bp->dhid, a->ln2.out, w->fc1_w,
			    M, C, Hd, kk, nt);
	/* dY += LN2 backward: dY is now d(res1) */
	ln_backward(bp, b, &a->ln2, &ids->norm2, dY, dw->norm2_w, dw->norm2_b,
		    bp->dtok2, a->res1, w->norm2_w, M, C);
	point_backward(b, ids->add_attn, dY, MC, NULL);
	/* res1 = in + reverse(proj): dY is also d(in)'s residual part */
	float *dproj = bp->dwin[0], *dav = bp->dwin[1], *dxw = bp->dwin[0];
	zero(dproj, WC);
	op_window_reverse_add_backward(NULL, dproj, dY, g, nt);
	point_backward(b, ids->proj, dproj, WC, NULL);
	linear_backward_set(dav, dw->proj_w, dw->proj_b, dproj, a->av, w->proj_w,
			    rows, C, C, kk, nt);
	point_backward(b, ids->av, dav, WC, NULL);
	zero(bp->dbias, (size_t)NH * N * N);
	zero(bp->dqkv, 3 * WC);
	if (!b->ctx) {
		/* fused attention straight into the (BW, N, 3C) layout of qkv */
		op_window_attention_backward(bp->dqkv, bp->dqkv + C, bp->dqkv + 2 * C, 3 * C,
					     bp->dbias, bp->attn_scratch, dav, a->q, a->k,
					     a->v, C, a->rel_bias, mask_bias, scale, BW,
					     g->nW, NH, N, C, kk, nt);
		linear_backward_set(dxw, dw->qkv_w, dw->qkv_b, bp->dqkv, a->xw, w->qkv_w,
				    rows, C, 3 * C, kk, nt);
	} else {
		const int id[AT_POINTS] = {
			[AT_QK] = ids->qk, [AT_LOGITS] = ids->logits,
			[AT_SUB_MAX] = ids->sm_sub_max, [AT_EXP] = ids->sm_exp,
			[AT_SUM] = ids->sm_sum, [AT_RECIP] = ids->sm_recip,
			[AT_OUT] = ids->sm_out,
		};
		struct fq_bwd fq[AT_POINTS];
		double acc[AT_POINTS] = { 0 };
		float *dq = bp->dqkv, *dk = bp->dqkv + WC, *dv = bp->dqkv + 2 * WC;
		for (int i = 0; i < AT_POINTS; i++)
			fq[i] = point_bwd(b->ctx, id[i]);
		op_attention_steps_backward(dq, dk, dv, bp->dbias, acc, dav, a->q_scaled,
					    a->k, a->v, a->logits, a->exp,
					    fq[AT_EXP].pre ? fq[AT_EXP].pre : a->exp,
					    a->sum, a->recip, a->attn, keep, fq,
					    bp->attn_scratch, BW, g->nW, NH, N, C, kk, nt);
		for (int i = 0; i < AT_POINTS; i++)
			add_dscale(b->ctx, id[i], acc[i]);
		/* q_scaled = q * scale, in place: dq becomes d q */
		point_backward(b, ids->q_scaled, dq, WC, NULL);
		#pragma omp parallel for num_threads(nt) schedule(static)
		for (size_t i = 0; i < WC; i++)
			dq[i] *= scale;
		point_backward(b, ids->q, dq, WC, NULL);
		point_backward(b, ids->k, dk, WC, NULL);
		point_backward(b, ids->v, dv, WC, NULL);
		size_t CC = (size_t)C * C;
		linear_backward_set(dxw, dw->qkv_w, dw->qkv_b, dq, a->xw, w->qkv_w,
				    rows, C, C, kk, nt);
		op_linear_backward(dxw, dw->qkv_w + CC, dw->qkv_b + C, dk, a->xw,
				   w->qkv_w + CC, rows, C, C, kk, nt);
		op_linear_backward(dxw, dw->qkv_w + 2 * CC, dw->qkv_b + 2 * C, dv, a->xw,
				   w->qkv_w + 2 * CC, rows, C, C, kk, nt);
	}
	/* relative position bias: its point, then the gather from the table */
	point_backward(b, ids->rel_pos_bias, bp->dbias, (size_t)NH * N * N, NULL);
	op_gather_rel_bias_backward(dw->rel_pos_table, bp->dbias, rel_index, NH, N);
	/* xw = partition(ln1.out); d(in) = dY += LN1 backward */
	zero(bp->dtok2, MC);
	op_window_partition_backward(bp->dtok2, dxw, g, nt);
	ln_backward(bp, b, &a->ln1, &ids->norm1, dY, dw->norm1_w, dw->norm1_b,
		    bp->dtok2, a->in, w->norm1_w, M, C);
}

static bool ctx_has_saved(const struct qp_ctx *ctx, struct qcal_err *err,
			  enum qcal_status *st)
{
	const struct qp_table *t = ctx->table;

	for (int i = 0; i < t->count; i++) {
		if (t->points[i].role == QP_ROLE_WEIGHT || !point_quantized(ctx, i))
			continue;
		if (ctx->mode != QP_MODE_QAT) {
			*st = qcal_err_set(err, QCAL_EINVAL,
					   "backward: point %s is fake-quantized outside QAT mode "
					   "(the STE needs its saved pre-quant tensor)",
					   t->points[i].name);
			return false;
		}
		if (!ctx->saved || !ctx->saved[i]) {
			*st = qcal_err_set(err, QCAL_EINVAL,
					   "backward: quantized point %s has no saved pre-quant "
					   "tensor (see swin_qat_state)", t->points[i].name);
			return false;
		}
	}
	return true;
}

enum qcal_status swin_backward(struct swin_backward_plan *bp, struct swin_plan *p,
			       const struct swin_model *model,
			       const struct swin_weights *w, const struct qp_ctx *ctx,
			       const float *dlogits, int B,
			       const struct swin_weights *dw, float *dinput,
			       struct qcal_err *err)
{
	const struct swin_config *c = &p->cfg;
	const struct swin_kernels *kk = p->kernels;
	struct bctx b = { .ctx = qp_ctx_active(ctx) ? ctx : NULL, .nt = p->threads };
	const struct qp_table *qt = b.ctx ? ctx->table : NULL;
	static const struct qp_block_ids no_block_ids;
	int cur = 0, Sn = c->num_stages;
	enum qcal_status st = QCAL_OK;

	if (!(p->flags & SWIN_PLAN_TRAIN) || !bp->arena)
		return qcal_err_set(err, QCAL_EINVAL,
				    "backward: needs a SWIN_PLAN_TRAIN plan and its backward plan");
	struct swin_backward_plan sized = { .batch = p->batch, .threads = p->threads };
	if (bp->batch != p->batch || bp->threads != p->threads ||
	    bw_layout(&sized, c, NULL) != bp->arena_floats)
		return qcal_err_set(err, QCAL_EINVAL,
				    "backward: the backward plan was made for another plan "
				    "(batch %d, %d threads; this plan: batch %d, %d threads)",
				    bp->batch, bp->threads, p->batch, p->threads);
	if (B < 1 || B > p->batch)
		return qcal_err_set(err, QCAL_EINVAL,
				    "backward: batch %d, plan holds 1..%d", B, p->batch);
	if (b.ctx && !(p->flags & SWIN_PLAN_DECOMPOSED))
		return qcal_err_set(err, QCAL_EINVAL,
				    "backward: quantization mode needs a decomposed plan");
	if (!b.ctx && (p->flags & SWIN_PLAN_DECOMPOSED))
		return qcal_err_set(err, QCAL_EINVAL,
				    "backward: a decomposed plan needs an active qp_ctx "
				    "(the float path keeps fused activations)");
	if (b.ctx && !qt)
		return qcal_err_set(err, QCAL_EINVAL, "backward: qp_ctx without a point table");
	if (b.ctx && !ctx_has_saved(ctx, err, &st))
		return st;
	if (model->cfg.img_size != c->img_size || model->table.numel == 0)
		return qcal_err_set(err, QCAL_EINVAL, "backward: model does not match the plan");
	if (!w)
		w = &model->w;

	int Rf = swin_stage_res(c, Sn - 1), Cf = swin_stage_dim(c, Sn - 1), Tf = Rf * Rf;
	int K = c->num_classes, blk = swin_total_blocks(c);
	float *dY = bp->dstream[cur];

	/* logits = pool @ head^T + b (head point); pool = mean of norm.out */
	memcpy(bp->dlogits, dlogits, (size_t)B * K * sizeof(float));
	if (qt)
		point_backward(&b, qt->head, bp->dlogits, (size_t)B * K, NULL);
	linear_backward_set(bp->dpool, dw->head_w, dw->head_b, bp->dlogits, p->pool,
			    w->head_w, B, Cf, K, kk, b.nt);
	if (qt)
		point_backward(&b, qt->pool, bp->dpool, (size_t)B * Cf, NULL);
	zero(bp->dtok, (size_t)B * Tf * Cf);
	op_avgpool_backward(bp->dtok, bp->dpool, B, Tf, Cf, b.nt);
	zero(dY, (size_t)B * Tf * Cf);
	const float *last = p->blocks[blk - 1].out;
	ln_backward(bp, &b, &p->norm, qt ? &qt->norm : NULL, dY, dw->norm_w, dw->norm_b,
		    bp->dtok, last, w->norm_w, B * Tf, Cf);

	for (int s = Sn - 1; s >= 0; s--) {
		const struct swin_stage_geom *sg = &p->stages[s];
		struct swin_window_geom plain, shifted;
		int C = swin_stage_dim(c, s), R = swin_stage_res(c, s);
		if (s + 1 < Sn) {
			/* patch merging: concat -> LN -> reduction (no bias) */
			const struct swin_merge_acts *m = &p->merges[s];
			const struct qp_merge_ids *ids = qt ? &qt->merges[s] : NULL;
			int R2 = swin_stage_res(c, s + 1), M2 = B * R2 * R2;
			size_t n4 = (size_t)M2 * 4 * C;
			float *dX = bp->dstream[cur ^ 1];
			if (ids)
				point_backward(&b, ids->reduction, dY, (size_t)M2 * 2 * C, NULL);
			linear_backward_set(bp->dtok, dw->merges[s].reduction_w, NULL, dY, m->ln.out,
					    w->merges[s].reduction_w, M2, 4 * C, 2 * C, kk, b.nt);
			zero(bp->dtok2, n4);
			ln_backward(bp, &b, &m->ln, ids ? &ids->norm : NULL, bp->dtok2,
				    dw->merges[s].norm_w, dw->merges[s].norm_b, bp->dtok,
				    m->concat, w->merges[s].norm_w, M2, 4 * C);
			if (ids)
				point_backward(&b, ids->concat, bp->dtok2, n4, NULL);
			zero(dX, (size_t)B * R * R * C);
			op_merge_gather_backward(dX, bp->dtok2, B, R, R, C, b.nt);
			cur ^= 1;
			dY = dX;
		}
		swin_window_geom_init(&plain, B, R, R, C, c->window_size, 0);
		swin_window_geom_init(&shifted, B, R, R, C, c->window_size,
				      sg->shifts ? c->window_size / 2 : 0);
		for (int i = c->depths[s] - 1; i >= 0; i--) {
			int odd = (i % 2 == 1) && sg->shifts;
			blk--;
			block_backward(bp, &b, p, &p->blocks[blk], &w->blocks[blk], &dw->blocks[blk],
				       qt ? &qt->blocks[blk] : &no_block_ids,
				       odd ? &shifted : &plain, c->num_heads[s],
				       odd ? sg->keep : NULL, odd ? sg->mask_bias : NULL,
				       model->rel_index,
				       swin_mlp_hidden(c, s), dY);
		}
	}

	/* patch_norm(patch); patch = conv(input) (patch_embed point, input point) */
	int R0 = swin_stage_res(c, 0), E = c->embed_dim, M0 = B * R0 * R0;
	size_t in_numel = (size_t)B * c->in_chans * c->img_size * c->img_size;
	zero(bp->dtok, (size_t)M0 * E);
	ln_backward(bp, &b, &p->patch_norm, qt ? &qt->patch_norm : NULL, bp->dtok,
		    dw->patch_norm_w, dw->patch_norm_b, dY, p->patch, w->patch_norm_w, M0, E);
	if (qt)
		point_backward(&b, qt->patch_embed, bp->dtok, (size_t)M0 * E, NULL);
	bool input_q = qt && point_quantized(ctx, qt->input);
	float *dimg = dinput && input_q ? bp->dimg : dinput;
	if (dimg == bp->dimg)
		zero(dimg, in_numel);
	op_patch_embed_backward(dimg, dw->patch_w, dw->patch_b, bp->dcols, bp->dtok, p->cols,
				w->patch_w, B, c->in_chans, c->img_size, c->img_size,
				c->patch_size, E, kk, b.nt);
	if (dinput && input_q) {
		point_backward(&b, qt->input, bp->dimg, in_numel, NULL);
		op_add_backward(dinput, NULL, bp->dimg, in_numel, b.nt);
	}
	return QCAL_OK;
}

/* ---- QAT state ---- */

enum qcal_status swin_qat_state_init(struct swin_qat_state *st,
				     const struct qp_table *t,
				     const struct qp_qparams *qparams, int batch,
				     struct qcal_err *err)
{
	size_t total = 0;

	memset(st, 0, sizeof(*st));
	if (batch < 1)
		return qcal_err_set(err, QCAL_EINVAL, "qat state: batch %d, expected >= 1", batch);
	st->count = t->count;
	st->saved = calloc((size_t)t->count, sizeof(*st->saved));
	st->learnable = calloc((size_t)t->count, sizeof(*st->learnable));
	st->dscale = calloc((size_t)t->count, sizeof(*st->dscale));
	if (!st->saved || !st->learnable || !st->dscale)
		goto out_nomem;
	for (int pass = 0; pass < 2; pass++) {
		size_t off = 0;
		for (int i = 0; i < t->count; i++) {
			const struct qp_point *pt = &t->points[i];
			if (pt->role == QP_ROLE_WEIGHT || qparams[i].dtype == QCAL_DTYPE_FLOAT)
				continue;
			size_t n = pt->numel * (pt->role == QP_ROLE_ACTIVATION ? (size_t)batch : 1);
			if (pass == 1)
				st->saved[i] = st->arena + off;
			off += (n + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
		}
		if (pass == 0) {
			total = off;
			st->arena_floats = total;
			st->arena = aligned_alloc(64, (total ? total : ALIGN_FLOATS) * sizeof(float));
			if (!st->arena)
				goto out_nomem;
		}
	}
	return QCAL_OK;

out_nomem:
	swin_qat_state_free(st);
	return qcal_err_set(err, QCAL_ENOMEM,
			    "qat state: cannot allocate %.1f MiB of saved pre-quant tensors",
			    (double)total * sizeof(float) / (1 << 20));
}

void swin_qat_state_free(struct swin_qat_state *st)
{
	if (!st)
		return;
	free(st->saved);
	free(st->learnable);
	free(st->dscale);
	free(st->arena);
	memset(st, 0, sizeof(*st));
}

void swin_qat_state_attach(struct swin_qat_state *st, struct qp_ctx *ctx)
{
	ctx->mode = QP_MODE_QAT;
	ctx->saved = st->saved;
	ctx->learnable = st->learnable;
	ctx->dscale = st->dscale;
}

void swin_qat_zero_dscale(struct swin_qat_state *st)
{
	memset(st->dscale, 0, (size_t)st->count * sizeof(*st->dscale));
}
