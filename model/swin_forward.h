/*
 * The Swin V1 forward pass and the plan that holds its activations.
 *
 * A plan is made once for (config, batch size, flags) and reused for every
 * batch: all activations live in one arena carved into named buffers, so no
 * layer allocates.  Flags select what the arena keeps:
 *
 *   SWIN_PLAN_DECOMPOSED  materialise every quantization point's tensor
 *                         (LayerNorm and softmax step by step); required by
 *                         any qp_ctx mode other than QP_MODE_FLOAT.
 *   SWIN_PLAN_TRAIN       keep every block's activations (for backward)
 *                         instead of sharing one set across blocks.
 *
 * Without SWIN_PLAN_TRAIN the blocks share their internal buffers and the
 * residual stream ping-pongs between two buffers, which bounds memory by the
 * largest block rather than the whole network.
 */
#ifndef QCAL_MODEL_SWIN_FORWARD_H
#define QCAL_MODEL_SWIN_FORWARD_H

#include <stdint.h>

#include "core/status.h"
#include "model/gemm.h"
#include "model/qpoint.h"
#include "model/swin_model.h"
#include "model/swin_ops.h"

enum {
	SWIN_PLAN_DECOMPOSED = 1u << 0,
	SWIN_PLAN_TRAIN = 1u << 1,
};

/* LayerNorm activations; unused steps are NULL on the fused path. */
struct swin_ln_acts {
	float *mean, *rstd;          /* (M) */
	float *centered, *square;    /* (M, C) decomposed only */
	float *var;                  /* (M) decomposed only */
	float *normalized;           /* (M, C) decomposed only */
	float *out;                  /* (M, C) */
};

struct swin_block_acts {
	float *in;                   /* (B, T, C) borrowed: previous output */
	struct swin_ln_acts ln1;     /* M = B*T */
	float *xw;                   /* (BW, N, C) windowed ln1.out */
	float *qkv;                  /* (BW, N, 3C); NULL on the decomposed path, which
				      * projects q, k, v into their own buffers */
	float *q, *k, *v;            /* (BW, N, C); q is scaled in place on the fused path */
	float *q_scaled;             /* (BW, N, C) decomposed only */
	float *rel_bias;             /* (NH, N, N) */
	float *qk, *logits;          /* (BW, NH, N, N) decomposed only */
	float *sub_max, *exp, *attn; /* (BW, NH, N, N) decomposed only */
	float *sum, *recip;          /* (BW, NH, N) decomposed only */
	float *av;                   /* (BW, N, C) */
	float *proj;                 /* (BW, N, C) */
	float *res1;                 /* (B, T, C) x + attention */
	struct swin_ln_acts ln2;
	float *fc1, *gelu;           /* (B, T, Hd) */
	float *fc2;                  /* (B, T, C) */
	float *out;                  /* (B, T, C) res1 + mlp */
};

struct swin_merge_acts {
	float *concat;               /* (B, T', 4C) */
	struct swin_ln_acts ln;
	float *out;                  /* (B, T', 2C) */
};

struct swin_stage_geom {
	struct swin_window_geom geom; /* shift is this stage's odd-block shift */
	int shifts;                   /* odd blocks shift */
	uint8_t *keep;                /* (nW, N, N) when shifts */
	float *mask_bias;             /* (nW, N, N) 0 / -inf when shifts (fused path) */
	uint8_t *keep_full;           /* (B*nW, NH, N, N) decomposed plans only */
};

struct swin_plan {
	struct swin_config cfg;      /* copy (no class names) */
	int batch;
	unsigned flags;
	int threads;
	const struct swin_kernels *kernels;
	float *arena;                /* owned */
	size_t arena_floats;
	uint8_t *mask_arena;         /* owned */
	/* activations */
	float *input;                /* (B, Cin, H, W) copy of the input, quantized in place */
	float *cols;                 /* (B*T0, Cin*P*P) im2col */
	float *patch;                /* (B, T0, E) */
	struct swin_ln_acts patch_norm;
	struct swin_block_acts *blocks;     /* [total blocks] owned */
	struct swin_merge_acts merges[SWIN_MAX_STAGES];
	struct swin_ln_acts norm;
	float *pool;                 /* (B, Cf) */
	float *logits;               /* (B, K) */
	float *attn_scratch;         /* threads * N * N */
	float *mlp_scratch;          /* threads * chunk * Hd (inference float path) */
	struct swin_stage_geom stages[SWIN_MAX_STAGES];
};

/*
 * Plan for cfg at batch B.  threads < 1 means one per online core.  kernels
 * NULL means OpenBLAS.
 */
enum qcal_status swin_plan_init(struct swin_plan *plan,
				const struct swin_config *cfg, int batch,
				unsigned flags, int threads,
				const struct swin_kernels *kernels,
				struct qcal_err *err);
void swin_plan_free(struct swin_plan *plan);
/* Bytes held by the plan's arenas. */
size_t swin_plan_bytes(const struct swin_plan *plan);

/*
 * Forward pass of `batch` images (batch <= plan->batch) of normalised NCHW
 * input.  Logits end in plan->logits (batch, K).  ctx may be NULL (float).
 * A ctx in any mode but QP_MODE_FLOAT requires a SWIN_PLAN_DECOMPOSED plan.
 * weights: the parameters to use (model->w, or a fake-quantized copy).
 */
enum qcal_status swin_forward(struct swin_plan *plan,
			      const struct swin_model *model,
			      const struct swin_weights *weights,
			      const struct qp_ctx *ctx, const float *input,
			      int batch, struct qcal_err *err);

/* Output of model.features[i] (NHWC) after a forward, for parity tests;
 * NULL if out of range.  Sets *numel_per_image. */
const float *swin_plan_feature(const struct swin_plan *plan, int index,
			       size_t *numel_per_image);

#endif
