/*
 * The parameter table: every learnable tensor of a Swin V1 model, in
 * torchvision's state_dict naming, with its shape and its offset in one flat
 * float buffer.  The same table lays out weights, gradients and optimizer
 * moments (three buffers of swin_param_table.numel floats), so a parameter's
 * offset identifies it everywhere.
 *
 * swin_weights_bind() carves named pointers (struct swin_weights) out of any
 * such flat buffer; forward and backward code only ever sees those pointers.
 */
#ifndef QCAL_MODEL_SWIN_PARAMS_H
#define QCAL_MODEL_SWIN_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "model/swin_config.h"

#define SWIN_TENSOR_NAME_MAX 96

enum swin_param_kind {
	SWIN_PARAM_CONV_WEIGHT,   /* (E, Cin, P, P) */
	SWIN_PARAM_LINEAR_WEIGHT, /* (out, in) */
	SWIN_PARAM_BIAS,          /* (out) of a conv/linear */
	SWIN_PARAM_NORM_WEIGHT,   /* LayerNorm gamma */
	SWIN_PARAM_NORM_BIAS,     /* LayerNorm beta */
	SWIN_PARAM_REL_POS_TABLE, /* ((2WS-1)^2, NH) */
};

struct swin_param_spec {
	char name[SWIN_TENSOR_NAME_MAX];
	enum swin_param_kind kind;
	int ndim;
	int64_t shape[4];
	size_t offset; /* in floats, into the flat buffer */
	size_t numel;
};

struct swin_param_table {
	struct swin_param_spec *specs; /* owned */
	int count;
	size_t numel;                  /* total floats */
};

/* Build the table for cfg (which must be valid). */
enum qcal_status swin_param_table_init(struct swin_param_table *t,
				       const struct swin_config *cfg,
				       struct qcal_err *err);
void swin_param_table_free(struct swin_param_table *t);
/* Index of a name, or -1. */
int swin_param_table_find(const struct swin_param_table *t, const char *name);

/* Named views of one block's parameters (shapes for stage dim C, hidden Hd). */
struct swin_block_weights {
	float *norm1_w, *norm1_b;   /* (C) */
	float *qkv_w, *qkv_b;       /* (3C, C), (3C) */
	float *rel_pos_table;       /* ((2WS-1)^2, NH) */
	float *proj_w, *proj_b;     /* (C, C), (C) */
	float *norm2_w, *norm2_b;   /* (C) */
	float *fc1_w, *fc1_b;       /* (Hd, C), (Hd) */
	float *fc2_w, *fc2_b;       /* (C, Hd), (C) */
};

struct swin_merge_weights {
	float *norm_w, *norm_b;     /* (4C) */
	float *reduction_w;         /* (2C, 4C) */
};

struct swin_weights {
	float *patch_w, *patch_b;   /* (E, Cin, P, P), (E) */
	float *patch_norm_w, *patch_norm_b; /* (E) */
	struct swin_block_weights *blocks;  /* [total blocks], owned by the bind */
	struct swin_merge_weights merges[SWIN_MAX_STAGES]; /* [num_stages - 1] */
	float *norm_w, *norm_b;     /* (Cf) */
	float *head_w, *head_b;     /* (K, Cf), (K) */
};

/*
 * Point w's fields into base (a flat buffer of t->numel floats laid out by t).
 * Allocates w->blocks; release with swin_weights_unbind.
 */
enum qcal_status swin_weights_bind(struct swin_weights *w,
				   const struct swin_config *cfg,
				   const struct swin_param_table *t, float *base);
void swin_weights_unbind(struct swin_weights *w);

/* Torchvision's relative_position_index for a WS x WS window: (N*N) entries. */
void swin_relative_position_index(int window_size, int32_t *index);

#endif
