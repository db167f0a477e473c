/*
 * Quantization points: every tensor an integer deployment of the model would
 * hold gets a stable name (module paths of torchvision's SwinTransformer,
 * e.g. "features.1.0.attn.softmax.exp"), a kind and a shape.  The table is
 * data built from the config; the forward pass calls qp_apply() with a point
 * id wherever such a tensor is materialised, and the context decides what
 * happens there:
 *
 *   QP_MODE_FLOAT      nothing (the forward even skips materialising)
 *   QP_MODE_OBSERVE    hand the tensor to ctx->observe (calibration, reports)
 *   QP_MODE_FAKEQUANT  fake-quantize in place with the point's qparams
 *   QP_MODE_QAT        as FAKEQUANT, but keep the pre-quant tensor for the
 *                      straight-through / LSQ backward
 *
 * An observe callback may also be set in the quantizing modes: it then sees
 * the tensor before quantization (reports use this for per-point errors).
 *
 * Weight points (role QP_ROLE_WEIGHT) are not applied inside the forward:
 * weights are fake-quantized once into a copy of the parameters
 * (swin_weights_fakequant), because they do not change between images.
 */
#ifndef QCAL_MODEL_QPOINT_H
#define QCAL_MODEL_QPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/fakequant.h"
#include "model/swin_config.h"
#include "model/swin_params.h"

#define QP_NAME_MAX 128

enum qp_kind {
	QP_KIND_INPUT,
	QP_KIND_PATCH_EMBED,    /* conv output */
	QP_KIND_LN_MEAN,
	QP_KIND_LN_CENTERED,    /* x - mean */
	QP_KIND_LN_SQUARE,
	QP_KIND_LN_VAR,
	QP_KIND_LN_RSTD,
	QP_KIND_LN_NORMALIZED,  /* (x - mean) * rstd */
	QP_KIND_LN_OUT,         /* affine output */
	QP_KIND_ATTN_Q,
	QP_KIND_ATTN_K,
	QP_KIND_ATTN_V,
	QP_KIND_ATTN_Q_SCALED,
	QP_KIND_ATTN_QK,        /* q*scale @ k^T */
	QP_KIND_REL_POS_BIAS,   /* gathered bias, an auxiliary input */
	QP_KIND_ATTN_LOGITS,    /* qk + bias: the masked sum (mask fused into softmax) */
	QP_KIND_SOFTMAX_SUB_MAX,
	QP_KIND_SOFTMAX_EXP,
	QP_KIND_SOFTMAX_SUM,
	QP_KIND_SOFTMAX_RECIP,
	QP_KIND_SOFTMAX_OUT,
	QP_KIND_ATTN_AV,        /* attn @ v */
	QP_KIND_LINEAR,         /* proj, fc1, fc2, reduction outputs */
	QP_KIND_GELU,
	QP_KIND_RESIDUAL_ADD,
	QP_KIND_MERGE_CONCAT,
	QP_KIND_POOL,
	QP_KIND_HEAD,           /* logits of the network */
	QP_KIND_WEIGHT,
	QP_KIND_COUNT
};

enum qp_role {
	QP_ROLE_ACTIVATION, /* shape is per image; the batch multiplies it */
	QP_ROLE_AUX,        /* constant per forward (relative position bias) */
	QP_ROLE_WEIGHT,     /* a parameter tensor, quantized per output channel */
};

struct qp_point {
	char name[QP_NAME_MAX];
	enum qp_kind kind;
	enum qp_role role;
	int ndim;
	int64_t shape[5];   /* per image for activations */
	size_t numel;       /* product of shape */
	int param_index;    /* weights: index in the parameter table, else -1 */
	int channels;       /* weights: output channels (axis 0), else 1 */
	bool maskable;      /* may carry a keep-mask (shifted-window softmax) */
};

struct qp_ln_ids {
	int mean, centered, square, var, rstd, normalized, out;
};

struct qp_block_ids {
	struct qp_ln_ids norm1;
	int q, k, v, q_scaled, qk, rel_pos_bias, logits;
	int sm_sub_max, sm_exp, sm_sum, sm_recip, sm_out;
	int av, proj, add_attn;
	struct qp_ln_ids norm2;
	int fc1, gelu, fc2, add_mlp;
	int w_qkv, w_proj, w_fc1, w_fc2;
};

struct qp_merge_ids {
	int concat;
	struct qp_ln_ids norm;
	int reduction, w_reduction;
};

struct qp_table {
	struct qp_point *points;     /* owned */
	int count;
	/* ids the forward uses, by position in the network */
	int input, patch_embed, w_patch;
	struct qp_ln_ids patch_norm;
	struct qp_block_ids *blocks; /* [total blocks], owned */
	struct qp_merge_ids merges[SWIN_MAX_STAGES];
	struct qp_ln_ids norm;
	int pool, head, w_head;
};

enum qcal_status qp_table_init(struct qp_table *t, const struct swin_config *cfg,
			       const struct swin_param_table *params,
			       struct qcal_err *err);
void qp_table_free(struct qp_table *t);
int qp_table_find(const struct qp_table *t, const char *name);

/* Kind names used in configs and scale files ("layernorm.mean", ...). */
const char *qp_kind_name(enum qp_kind kind);
int qp_kind_parse(const char *name, enum qp_kind *kind);
const char *qp_role_name(enum qp_role role);

/* The resolved quantization of one point. */
struct qp_qparams {
	enum qcal_dtype dtype;  /* QCAL_DTYPE_FLOAT: point not quantized */
	int64_t qmin, qmax;
	float scale;            /* per tensor */
	int32_t zero_point;
	int channels;           /* > 1: per-channel along axis 0 */
	float *scales;          /* [channels] when per-channel (owned by whoever made it) */
	int32_t *zero_points;   /* [channels] or NULL */
};

enum qp_mode {
	QP_MODE_FLOAT,
	QP_MODE_OBSERVE,
	QP_MODE_FAKEQUANT,
	QP_MODE_QAT,
};

/*
 * Called with a point's tensor (n floats, the whole batch).  keep is NULL or a
 * byte per element, 0 where the value is not part of the tensor's data (the
 * shifted-window mask positions) and must not influence statistics.
 */
typedef void (*qp_observe_fn)(void *user, int point, const float *x, size_t n,
			      const uint8_t *keep);

struct qp_ctx {
	enum qp_mode mode;
	const struct qp_table *table;
	const struct qp_qparams *qparams;  /* [table->count] in FAKEQUANT/QAT */
	qp_observe_fn observe;             /* optional, any mode but FLOAT */
	void *observe_user;
	/* QAT: per-point buffer receiving the pre-quant tensor; set by the plan */
	float **saved;
	int threads;                       /* fake-quant team size (0 = 1) */
	/*
	 * QAT backward (swin_backward.h; swin_qat_state provides all three
	 * arrays): learnable[id] asks for the LSQ gradient of point id's scale,
	 * which is accumulated (+=, gradient scale applied) into dscale[id].
	 * Either NULL: no scale gradients (the STE still applies).
	 */
	const bool *learnable;             /* [table->count] */
	float *dscale;                     /* [table->count] */
};

/* True when the forward must materialise every point's tensor. */
static inline bool qp_ctx_active(const struct qp_ctx *ctx)
{
	return ctx && ctx->mode != QP_MODE_FLOAT;
}

/* Apply point id to x[0..n) as ctx->mode says (see the file comment). */
void qp_apply(const struct qp_ctx *ctx, int id, float *x, size_t n,
	      const uint8_t *keep);

#endif
