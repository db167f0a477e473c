/*
 * Swin V1 architecture description, as stored in a checkpoint's `config`
 * attribute (JSON) and in model cards.  Everything the model code needs to
 * size tensors comes from here; nothing is hard-coded for Swin-T.
 *
 * Validation rejects configurations the model cannot run (heads not dividing
 * the channel count, a patch larger than the image, ...) with a message that
 * names the field and the rule.
 */
#ifndef QCAL_MODEL_SWIN_CONFIG_H
#define QCAL_MODEL_SWIN_CONFIG_H

#include <stdbool.h>

#include "core/status.h"

#define SWIN_MAX_STAGES 8
#define SWIN_MAX_CHANS 8
#define SWIN_NAME_MAX 128

struct swin_config {
	char name[SWIN_NAME_MAX];
	int img_size;                  /* square input side, pixels */
	int patch_size;                /* patch embedding kernel = stride */
	int in_chans;                  /* image channels (3 for RGB) */
	int embed_dim;                 /* channels of stage 0 */
	int num_stages;
	int depths[SWIN_MAX_STAGES];    /* blocks per stage */
	int num_heads[SWIN_MAX_STAGES]; /* attention heads per stage */
	int window_size;               /* square attention window side WS */
	double mlp_ratio;              /* hidden = (int)(dim * mlp_ratio), as torchvision */
	int num_classes;
	/* input normalisation on [0,1] pixels: x = (p/255 - mean) / std */
	float mean[SWIN_MAX_CHANS];
	float std[SWIN_MAX_CHANS];
	int num_class_names;           /* 0 or num_classes */
	char **class_names;            /* owned; NULL when absent */
};

/*
 * Parse a config JSON object.  Unknown keys are ignored only if they are
 * purely descriptive (name, note, classes, test_acc, ...): the set of keys
 * that change the architecture is closed.  Fills cfg (release with
 * swin_config_free) and validates it.
 */
enum qcal_status swin_config_from_json(struct swin_config *cfg, const char *json,
				       struct qcal_err *err);

/* Check internal consistency; message names the offending field. */
enum qcal_status swin_config_validate(const struct swin_config *cfg,
				      struct qcal_err *err);

/* JSON text of cfg (caller frees), in the layout swin_config_from_json reads. */
char *swin_config_to_json(const struct swin_config *cfg);

/* Deep copy (class names duplicated). */
enum qcal_status swin_config_copy(struct swin_config *dst,
				  const struct swin_config *src);

/* Release class names; the struct itself is the caller's.  NULL-safe. */
void swin_config_free(struct swin_config *cfg);

/* Fill cfg with torchvision's Swin-T (img 224, 1000 classes, ImageNet mean/std). */
void swin_config_swin_t(struct swin_config *cfg);

/* Derived sizes. */
int swin_stage_dim(const struct swin_config *cfg, int stage);  /* embed_dim << stage */
int swin_stage_res(const struct swin_config *cfg, int stage);  /* token grid side */
int swin_mlp_hidden(const struct swin_config *cfg, int stage);
int swin_total_blocks(const struct swin_config *cfg);
/* Torchvision pads each stage to a multiple of the window. */
int swin_padded_res(const struct swin_config *cfg, int stage);
/* Torchvision drops the shift when the window covers the padded grid. */
bool swin_stage_shifts(const struct swin_config *cfg, int stage);
/* Index into model.features of a stage's blocks (1, 3, 5, ...) and of the
 * patch merging after it (2, 4, ...). */
int swin_stage_feature_index(int stage);

#endif
