/*
 * A loaded Swin V1 model: its config, its parameter table and the flat
 * parameter buffer, plus the derived relative-position index.  The model is
 * read-only during a forward pass, so one model can serve several plans
 * (threads, modes) at once.
 *
 * Checkpoints are HDF5 files with one float32 dataset per state_dict key at
 * the root and a JSON `config` attribute (shared/models/README.md).  Loading
 * is strict: a missing, misshapen, mistyped or unexpected tensor fails with
 * one line naming it.
 */
#ifndef QCAL_MODEL_SWIN_MODEL_H
#define QCAL_MODEL_SWIN_MODEL_H

#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"
#include "model/swin_config.h"
#include "model/swin_params.h"

struct swin_model {
	struct swin_config cfg;
	struct swin_param_table table;
	float *params;              /* (table.numel) owned, 64-byte aligned */
	struct swin_weights w;      /* named views into params */
	int32_t *rel_index;         /* (N*N) with N = WS*WS */
	/*
	 * True when the input normalisation has been folded into the patch
	 * embedding, so the network input is (pixel - 128) / 128.
	 */
	int input_folded;
};

/* Allocate a model for cfg with zeroed parameters. */
enum qcal_status swin_model_init(struct swin_model *m,
				 const struct swin_config *cfg,
				 struct qcal_err *err);

/* Fill parameters with seeded random values (truncated-normal-like, std 0.02;
 * LayerNorm weight 1, biases 0), as torchvision initialises. */
void swin_model_randomize(struct swin_model *m, struct qcal_rng *rng);

/* Deep copy. */
enum qcal_status swin_model_clone(struct swin_model *dst,
				  const struct swin_model *src,
				  struct qcal_err *err);

void swin_model_free(struct swin_model *m);

/* Load a checkpoint (strict).  m is initialised by this call. */
enum qcal_status swin_model_load(struct swin_model *m, const char *path,
				 struct qcal_err *err);

/* Write a checkpoint atomically (also writes relative_position_index so that
 * PyTorch's load_state_dict accepts the file). */
enum qcal_status swin_model_save(const struct swin_model *m, const char *path,
				 struct qcal_err *err);

/*
 * Fold the input normalisation into the patch embedding: afterwards the model
 * expects x = (pixel - 128) / 128 instead of (pixel/255 - mean) / std and
 * gives the same logits (up to float rounding).  Idempotent via input_folded.
 */
void swin_model_fold_input_norm(struct swin_model *m);

/* FLOPs of one image's forward (2 per multiply-add, matmuls and convs only). */
double swin_forward_flops(const struct swin_config *cfg);

#endif
