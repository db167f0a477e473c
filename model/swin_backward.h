/*
 * The Swin V1 backward pass, and the QAT state the forward fills for it.
 *
 * swin_backward() walks the network in reverse after a swin_forward() on a
 * SWIN_PLAN_TRAIN plan (which keeps every block's activations), calling the
 * explicit backward kernels of swin_ops_backward.h.  It takes the path the
 * forward took:
 *
 *   float (ctx NULL or QP_MODE_FLOAT; plan without SWIN_PLAN_DECOMPOSED):
 *     fused LayerNorm and window attention backward (softmax recomputed);
 *   decomposed (ctx QP_MODE_OBSERVE or QP_MODE_QAT; SWIN_PLAN_DECOMPOSED):
 *     every LayerNorm and softmax step in reverse, and at each quantized
 *     point the fake-quant backward: STE for the tensor, LSQ for the scale
 *     of points marked learnable (into ctx->dscale).
 *
 * Parameter gradients are ACCUMULATED (+=) into the caller's flat gradient
 * buffer, laid out by the model's parameter table and seen through a
 * struct swin_weights bound to it (swin_weights_bind), exactly as the forward
 * sees the weights; the input gradient likewise, when asked for.
 *
 * Memory: struct swin_backward_plan holds the gradient workspace (d-buffers),
 * allocated once per forward plan and reused by every block, so it is sized
 * by the largest block, not the network.  struct swin_qat_state holds the
 * pre-quant copies QP_MODE_QAT needs (one per quantized activation point,
 * whole batch), the per-point learnable switch and the scale gradients.
 */
#ifndef QCAL_MODEL_SWIN_BACKWARD_H
#define QCAL_MODEL_SWIN_BACKWARD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/status.h"
#include "model/qpoint.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"

struct swin_backward_plan {
	int batch, threads;
	unsigned flags;              /* the forward plan's */
	float *arena;                /* owned */
	size_t arena_floats;
	float *dstream[2];           /* (B, T, C) max over stages: the stream's gradient */
	float *dtok, *dtok2;         /* (M, C') max over LN inputs (merge: M2 x 4C) */
	float *dhid;                 /* (B, T, Hd) max over stages */
	float *dwin[2];              /* (BW, N, C) max over stages */
	float *dqkv;                 /* (BW, N, 3C) fused; dq_scaled | dk | dv decomposed */
	float *dbias;                /* (NH, N, N) max */
	float *dimg;                 /* (B, Cin, H, W) input gradient before its point */
	float *dcols;                /* (B*T0, Cin*P*P) im2col gradient */
	float *dlogits;              /* (B, K) */
	float *dpool;                /* (B, Cf) */
	float *ln_scratch;           /* threads * LayerNorm backward scratch of the widest */
	float *attn_scratch;         /* threads * max attention backward scratch */
	size_t attn_scratch_per_thread;
};

/* Workspace for backward passes after forwards on plan (batch, threads and
 * flags are taken from it). */
enum qcal_status swin_backward_plan_init(struct swin_backward_plan *bp,
					 const struct swin_plan *plan,
					 struct qcal_err *err);
void swin_backward_plan_free(struct swin_backward_plan *bp);
size_t swin_backward_plan_bytes(const struct swin_backward_plan *bp);

/*
 * Backward of the last swin_forward(plan, model, weights, ctx, input, batch).
 * Call it with the same plan, model, weights, ctx and batch (plan still
 * holds that forward's activations; weights NULL means model->w).
 *   dlogits (batch, K): d loss / d logits (e.g. from loss_cross_entropy).
 *   grads: views of the flat gradient buffer (swin_weights_bind over
 *          model->table.numel floats); every parameter gradient += .
 *   dinput (batch, Cin, H, W) += d loss / d input, or NULL to skip.
 * With an active ctx the plan must be SWIN_PLAN_DECOMPOSED; in QAT mode
 * every quantized activation point needs ctx->saved[id] (swin_qat_state),
 * and ctx->dscale[id] += the LSQ gradient of each point with
 * ctx->learnable[id].  Fails with EINVAL (nothing written) on a plan, ctx or
 * batch that does not match, and on QP_MODE_FAKEQUANT (no saved tensors).
 */
enum qcal_status swin_backward(struct swin_backward_plan *bp,
			       struct swin_plan *plan,
			       const struct swin_model *model,
			       const struct swin_weights *weights,
			       const struct qp_ctx *ctx, const float *dlogits,
			       int batch, const struct swin_weights *grads,
			       float *dinput, struct qcal_err *err);

/*
 * QAT state for a point table and a set of qparams (which points are
 * quantized; scales may change afterwards, the set may not):
 *   saved[id]     pre-quant buffer of every quantized activation / aux
 *                 point (numel * batch floats; aux points numel), NULL
 *                 for float and weight points;
 *   learnable[id] all false after init: mark the points whose scale QAT
 *                 learns (never the fixed-scale ones such as the 1/128
 *                 input, which then get the STE only);
 *   dscale[id]    scale gradients, zeroed by init and by swin_qat_zero_dscale.
 */
struct swin_qat_state {
	int count;
	float **saved;               /* [count] views into arena */
	bool *learnable;             /* [count] */
	float *dscale;               /* [count] */
	float *arena;                /* owned */
	size_t arena_floats;
};

enum qcal_status swin_qat_state_init(struct swin_qat_state *st,
				     const struct qp_table *table,
				     const struct qp_qparams *qparams, int batch,
				     struct qcal_err *err);
void swin_qat_state_free(struct swin_qat_state *st);
/* Point ctx (mode QP_MODE_QAT) at the state's saved, learnable and dscale. */
void swin_qat_state_attach(struct swin_qat_state *st, struct qp_ctx *ctx);
void swin_qat_zero_dscale(struct swin_qat_state *st);

/* LSQ gradient scale of point id: 1/sqrt(N * qmax), N its numel per image
 * (activations) or per forward (aux).  Weights: fq_lsq_grad_factor(inner, qmax). */
double swin_point_grad_factor(const struct qp_point *pt, const struct qp_qparams *qp);

#endif
