/*
 * The evaluation loop (see evaluate.h).  The float reference runs on the
 * fused float path; the fake-quantized model needs a decomposed plan so that
 * every point's tensor exists to be quantized.
 */
#include "calib/evaluate.h"

#include <stdio.h>
#include <string.h>

#include "core/finite.h"
#include "model/swin_forward.h"

/*
 * NaN or Inf logits would pass through argmax as class 0 and print as a
 * plausible accuracy: refuse them, saying which image and which model.
 */
static enum qcal_status check_logits(const float *logits, int count, int K, size_t first_image,
				     const char *which, struct qcal_err *err)
{
	size_t n = (size_t)count * (size_t)K, i = qcal_first_non_finite(logits, n, NULL);

	if (i == n)
		return QCAL_OK;
	return qcal_err_set(err, QCAL_ERANGE,
			    "the %s model's logits for image %zu (0-based, evaluation order) are "
			    "not finite (logit %zu = %g): a NaN or Inf input, or activations "
			    "beyond float32", which, first_image + i / (size_t)K, i % (size_t)K,
			    (double)logits[i]);
}

enum qcal_status eval_run(const struct swin_model *model,
			  const struct qmodel *qm, eval_next_fn next,
			  void *next_user, const struct eval_options *opt,
			  struct metrics *metrics, struct qcal_err *err)
{
	const struct swin_model *ref = qm ? &qm->float_model : model;
	struct swin_plan float_plan, quant_plan;
	enum qcal_status st;
	size_t done = 0;
	char status[96];

	metrics_init(metrics);
	memset(&quant_plan, 0, sizeof(quant_plan));
	st = swin_plan_init(&float_plan, &ref->cfg, opt->batch, 0, opt->threads, NULL, err);
	if (st != QCAL_OK)
		return st;
	if (qm) {
		st = swin_plan_init(&quant_plan, &ref->cfg, opt->batch,
				    SWIN_PLAN_DECOMPOSED, opt->threads, NULL, err);
		if (st != QCAL_OK)
			goto out_free_plans;
	}
	for (;;) {
		struct eval_batch b = { 0 };
		int K = ref->cfg.num_classes;
		st = next(next_user, &b, err);
		if (st != QCAL_OK || b.count == 0)
			break;
		if (b.count > opt->batch) {
			st = qcal_err_set(err, QCAL_EINVAL, "eval: source gave %d images, batch is %d",
					  b.count, opt->batch);
			break;
		}
		st = swin_forward(&float_plan, ref, NULL, NULL, b.images, b.count, err);
		if (st == QCAL_OK)
			st = check_logits(float_plan.logits, b.count, K, done, "float", err);
		if (st != QCAL_OK)
			break;
		if (qm) {
			st = swin_forward(&quant_plan, &qm->quant_model, NULL, &qm->ctx,
					  b.images, b.count, err);
			if (st == QCAL_OK)
				st = check_logits(quant_plan.logits, b.count, K, done, "quantized",
						  err);
			if (st != QCAL_OK)
				break;
			metrics_add(metrics, quant_plan.logits, float_plan.logits, b.labels,
				    b.count, K);
		} else {
			metrics_add(metrics, float_plan.logits, NULL, b.labels, b.count, K);
		}
		if (opt->on_logits) {
			st = opt->on_logits(opt->on_logits_user,
					    qm ? quant_plan.logits : float_plan.logits,
					    qm ? float_plan.logits : NULL, b.labels, b.count, err);
			if (st != QCAL_OK)
				break;
		}
		done += (size_t)b.count;
		if (metrics->labelled)
			snprintf(status, sizeof(status), "top-1 %.2f%%", 100.0 * metrics_top1(metrics));
		else
			status[0] = '\0';
		if (qcal_progress_report(&opt->progress, done, opt->total ? opt->total : done,
					 status[0] ? status : NULL)) {
			st = qcal_err_set(err, QCAL_ECANCEL, "eval: interrupted after %zu images", done);
			break;
		}
	}
out_free_plans:
	swin_plan_free(&quant_plan);
	swin_plan_free(&float_plan);
	return st;
}
