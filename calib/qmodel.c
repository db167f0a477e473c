/* Fake-quantized model assembly; see qmodel.h. */
#include "calib/qmodel.h"

#include <stdlib.h>
#include <string.h>

enum qcal_status qmodel_init(struct qmodel *qm, const struct swin_model *model,
			     const struct scale_table *scales, int threads,
			     struct qcal_err *err)
{
	enum qcal_status st;

	memset(qm, 0, sizeof(*qm));
	st = swin_model_clone(&qm->float_model, model, err);
	if (st != QCAL_OK)
		return st;
	if (scales->input_folded)
		swin_model_fold_input_norm(&qm->float_model);
	else if (model->input_folded) {
		st = qcal_err_set(err, QCAL_EINVAL,
				  "the model's input normalisation is folded but the scale file expects normalised input");
		goto out_fail;
	}
	st = swin_model_clone(&qm->quant_model, &qm->float_model, err);
	if (st != QCAL_OK)
		goto out_fail;
	scale_table_fakequant_weights(scales, &qm->quant_model);
	qm->qparams = calloc((size_t)scales->table->count, sizeof(*qm->qparams));
	if (!qm->qparams) {
		st = qcal_err_set(err, QCAL_ENOMEM, "out of memory");
		goto out_fail;
	}
	scale_table_qparams(scales, qm->qparams);
	qm->ctx.mode = QP_MODE_FAKEQUANT;
	qm->ctx.table = scales->table;
	qm->ctx.qparams = qm->qparams;
	qm->ctx.threads = threads;
	return QCAL_OK;
out_fail:
	qmodel_free(qm);
	return st;
}

void qmodel_free(struct qmodel *qm)
{
	if (!qm)
		return;
	swin_model_free(&qm->float_model);
	swin_model_free(&qm->quant_model);
	free(qm->qparams);
	memset(qm, 0, sizeof(*qm));
}

enum qcal_status qmodel_set_reference(struct qmodel *qm, const struct swin_model *ref,
				      struct qcal_err *err)
{
	struct swin_model copy;
	enum qcal_status st = swin_model_clone(&copy, ref, err);

	if (st != QCAL_OK)
		return st;
	if (qm->quant_model.input_folded)
		swin_model_fold_input_norm(&copy);
	swin_model_free(&qm->float_model);
	qm->float_model = copy;
	return QCAL_OK;
}
