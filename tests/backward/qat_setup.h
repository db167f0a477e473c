/*
 * Test and benchmark helper: a self-contained int8 QAT setup for a model,
 * without the calibration module.  Activation points get symmetric scales
 * f * max|x| / qmax from one observing forward, with f in [0.97, 1.07)
 * varying from point to point (the input keeps the fixed J5 scale 1/128 and
 * is never learnable); weight points get symmetric per-channel int8 scales
 * max|w_c| / 127.  The varying f clips a sliver of some ranges (so LSQ's
 * clamped branch is exercised) and keeps points fed by an identically scaled
 * quantized tensor off its grid: with exactly max|x| / qmax, q_scaled =
 * q / sqrt(D) and a merge's concat of the previous add sit on integers, and
 * their LSQ gradient round(x/s) - x/s is exactly zero.  The helper also owns
 * the fake-quantized weight copy a QAT step runs on.
 */
#ifndef QCAL_TESTS_BACKWARD_QAT_SETUP_H
#define QCAL_TESTS_BACKWARD_QAT_SETUP_H

#include "core/dtype.h"
#include "model/qpoint.h"
#include "model/swin_backward.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"

struct qat_setup {
	struct qp_table table;
	struct qp_qparams *qparams;    /* [table.count] */
	float *wscales;                /* per-channel scales of every weight point */
	float *dwscales;               /* their LSQ gradients */
	struct swin_qat_state st;
	struct qp_ctx ctx;             /* QP_MODE_QAT, attached to st */
	float *wq;                     /* (table.numel) fake-quantized parameters */
	struct swin_weights wqv;       /* views of wq */
};

enum qat_recipe {
	QAT_ALL_FLOAT,  /* every activation float (the decomposed path, no quantization) */
	QAT_ALL_INT8,   /* every activation int8 */
	QAT_J5,         /* int8, LayerNorm and softmax intermediates int16, logits int32
			 * (not learnable: a 32-bit scale lies below float resolution) */
};

/*
 * recipe: the dtypes of the activation points (weights are int8 per channel
 * in every recipe but QAT_ALL_FLOAT, where they stay float too).  plan must be
 * SWIN_PLAN_DECOMPOSED | SWIN_PLAN_TRAIN; input (batch images) drives the
 * observing pass.
 */
enum qcal_status qat_setup_init(struct qat_setup *q, const struct swin_model *m,
				struct swin_plan *plan, const float *input, int batch,
				enum qat_recipe recipe, struct qcal_err *err);
void qat_setup_free(struct qat_setup *q);
/* wq = model params with every weight point fake-quantized per channel. */
void qat_setup_fq_weights(struct qat_setup *q, const struct swin_model *m);
/* grads (table.numel, w.r.t. wq) become gradients w.r.t. the latent weights
 * (STE) and dwscales += the weight scales' LSQ gradients. */
void qat_setup_weight_backward(struct qat_setup *q, const struct swin_model *m,
			       float *grads);

#endif
