/*
 * Optimizers and learning-rate schedules for QAT, over flat float vectors
 * (the parameter table's layout for weights, one entry per learnable scale
 * for LSQ).  State (moments, step count) lives in caller-visible buffers so
 * a checkpoint can save and restore it bit for bit.
 *
 * AdamW follows Loshchilov & Hutter (decoupled weight decay, bias-corrected
 * moments) as torch.optim.AdamW computes it; SGD uses torch's momentum form
 * (v = mu v + g; p -= lr v) with coupled weight decay.
 */
#ifndef QCAL_QAT_OPTIM_H
#define QCAL_QAT_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

enum optim_kind { OPTIM_ADAMW, OPTIM_SGD };

struct optim_config {
	enum optim_kind kind;
	double lr;             /* peak learning rate */
	double weight_decay;
	double beta1, beta2;   /* AdamW */
	double eps;            /* AdamW */
	double momentum;       /* SGD */
};

void optim_config_default(struct optim_config *c, enum optim_kind kind);
const char *optim_kind_name(enum optim_kind kind);
int optim_kind_parse(const char *name, enum optim_kind *kind);

/* Optimizer state for n parameters: m and v moments (SGD uses m only). */
struct optim_state {
	size_t n;
	float *m, *v;   /* owned */
	int64_t step;   /* updates applied */
};

enum qcal_status optim_state_init(struct optim_state *s, size_t n,
				  struct qcal_err *err);
void optim_state_free(struct optim_state *s);

/*
 * One update of params (n) with grads (n) at learning rate lr.  decay is an
 * optional per-parameter mask (1 = apply weight decay, 0 = not, e.g. for
 * biases, norms and scales); NULL applies it everywhere.  Deterministic and
 * independent of thread count.
 */
void optim_step(const struct optim_config *c, struct optim_state *s,
		float *params, const float *grads, const uint8_t *decay,
		double lr);

/* Linear warmup from 0 over warmup steps, then cosine decay to min_lr at total. */
struct lr_schedule {
	double peak, min_lr;
	int64_t warmup, total;
};

double lr_at(const struct lr_schedule *s, int64_t step);

#endif
