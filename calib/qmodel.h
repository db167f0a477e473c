/*
 * A fake-quantized model ready to run: a private copy of the float model
 * (with the input normalisation folded in when the scale file says the
 * input is (pixel-128)/128) whose weights are fake-quantized once, plus the
 * per-point qparams and the qp_ctx that fake-quantizes activations inside
 * swin_forward.  The float reference for fidelity metrics is the same copy
 * before weight quantization, so both see identical inputs.
 */
#ifndef QCAL_CALIB_QMODEL_H
#define QCAL_CALIB_QMODEL_H

#include "calib/scales.h"
#include "model/qpoint.h"
#include "model/swin_model.h"

struct qmodel {
	struct swin_model float_model; /* folded if scales->input_folded */
	struct swin_model quant_model; /* float_model with fake-quant weights */
	struct qp_qparams *qparams;    /* [table->count], views into scales */
	struct qp_ctx ctx;             /* QP_MODE_FAKEQUANT */
};

enum qcal_status qmodel_init(struct qmodel *qm, const struct swin_model *model,
			     const struct scale_table *scales, int threads,
			     struct qcal_err *err);
void qmodel_free(struct qmodel *qm);

/*
 * Compare against another float model (e.g. the original checkpoint when
 * qm's weights were fine-tuned by QAT): replaces qm->float_model with a
 * copy of ref, folded like the quantized model.
 */
enum qcal_status qmodel_set_reference(struct qmodel *qm, const struct swin_model *ref,
				      struct qcal_err *err);

#endif
