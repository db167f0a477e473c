/*
 * Evaluation loop shared by `qcal eval`, calibration reports and QAT
 * validation: pull batches from a source, run the float model and, when a
 * fake-quantized model is given, the quantized one on the same input, and
 * accumulate metrics (top-1/5, agreement with float, logit SQNR, KL).
 * Logits can be streamed out (for --save-logits) through a callback.
 */
#ifndef QCAL_CALIB_EVALUATE_H
#define QCAL_CALIB_EVALUATE_H

#include <stdbool.h>

#include "calib/metrics.h"
#include "calib/qmodel.h"
#include "core/progress.h"
#include "core/status.h"
#include "model/swin_model.h"

/* One batch of normalised NCHW images; count == 0 marks the end. */
struct eval_batch {
	const float *images;
	const int *labels;     /* count entries, -1 when unlabelled */
	int count;
};

typedef enum qcal_status (*eval_next_fn)(void *user, struct eval_batch *batch,
					 struct qcal_err *err);

/* Called after each batch with the logits of the evaluated model (and of
 * the float model when a quantized one is evaluated). */
typedef enum qcal_status (*eval_logits_fn)(void *user, const float *logits,
					   const float *float_logits,
					   const int *labels, int count,
					   struct qcal_err *err);

struct eval_options {
	int batch;                 /* max images per batch the source delivers */
	int threads;
	size_t total;              /* expected images, for progress (0 = unknown) */
	struct qcal_progress progress;
	eval_logits_fn on_logits;  /* optional */
	void *on_logits_user;
};

/*
 * Evaluate model (float) or, when qm is non-NULL, qm's fake-quantized model
 * against qm's float model.  metrics is initialised by this call.
 */
enum qcal_status eval_run(const struct swin_model *model,
			  const struct qmodel *qm, eval_next_fn next,
			  void *next_user, const struct eval_options *opt,
			  struct metrics *metrics, struct qcal_err *err);

#endif
