/* Fake-quantized model assembly; see qmodel.h. */
#include "calib/qmodel.h"

#include <stdbool.h>
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
	const struct swin_config *a = &qm->quant_model.cfg, *b = &ref->cfg;
	struct swin_model copy;
	enum qcal_status st;

	/* the two models share inputs, so the architecture must be the same */
	bool same = a->img_size == b->img_size && a->patch_size == b->patch_size &&
		    a->in_chans == b->in_chans && a->embed_dim == b->embed_dim &&
		    a->num_stages == b->num_stages && a->window_size == b->window_size &&
		    a->mlp_ratio == b->mlp_ratio && a->num_classes == b->num_classes &&
		    (!ref->input_folded || qm->quant_model.input_folded);
	for (int s = 0; same && s < a->num_stages; s++)
		same = a->depths[s] == b->depths[s] && a->num_heads[s] == b->num_heads[s];
	/* a folded model's own normalisation is gone; ref gets folded to match */
	for (int c = 0; same && !qm->quant_model.input_folded && c < a->in_chans; c++)
		same = a->mean[c] == b->mean[c] && a->std[c] == b->std[c];
	if (!same)
		return qcal_err_set(err, QCAL_EINVAL,
				    "reference model '%s' has another architecture or normalisation than '%s'",
				    b->name, a->name);
	st = swin_model_clone(&copy, ref, err);
	if (st != QCAL_OK)
		return st;
	if (qm->quant_model.input_folded)
		swin_model_fold_input_norm(&copy);
	swin_model_free(&qm->float_model);
	qm->float_model = copy;
	return QCAL_OK;
}
