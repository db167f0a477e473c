/*
 * Fake-quant QAT: refine a calibrated scale table (and the weights) so the
 * quantized model recovers the float model's accuracy.
 *
 * Each step: the float teacher runs on the batch (distillation), the
 * weights are fake-quantized per output channel, the student runs the
 * decomposed forward in QP_MODE_QAT (fake quant at every quantized point,
 * pre-quant tensors kept), the loss mixes cross-entropy on the labels with
 * KL distillation from the teacher, and the backward gives weight gradients
 * through the straight-through estimator plus LSQ gradients for every
 * learnable scale.  AdamW (or SGD) updates the float master weights and the
 * scales on a warmup + cosine schedule.
 *
 * Everything a run depends on is in a checkpoint written atomically every N
 * steps (master weights, scales, both optimizers' moments and step counts,
 * the position in the epoch, running EMA ranges, the loss log), and data
 * order and augmentation are functions of (seed, epoch, image), so a resumed
 * run reaches the same final weights and scales as an uninterrupted one
 * (bit for bit on one thread).
 */
#ifndef QCAL_QAT_QAT_H
#define QCAL_QAT_QAT_H

#include <stdbool.h>
#include <stdint.h>

#include "calib/evaluate.h"
#include "calib/metrics.h"
#include "calib/scales.h"
#include "core/progress.h"
#include "core/status.h"
#include "datasets/dataset.h"
#include "model/swin_model.h"
#include "qat/optim.h"

enum qat_distill_loss {
	QAT_DISTILL_KL,   /* T^2 KL(softmax(teacher/T) || softmax(student/T)) */
	QAT_DISTILL_MSE,  /* mean squared difference of the logits */
};

enum qat_act_scales {
	QAT_ACT_LSQ,      /* learn activation scales (LSQ) */
	QAT_ACT_FROZEN,   /* keep the calibrated activation scales */
	QAT_ACT_EMA,      /* follow a moving average of each batch's range */
};

enum qat_weight_scales {
	QAT_WEIGHT_LSQ,     /* learn per-channel weight scales (LSQ) */
	QAT_WEIGHT_MINMAX,  /* recompute per-channel max|w| every step */
};

struct qat_options {
	double epochs;                 /* passes over the training set (fractions ok) */
	int batch, threads, workers;
	struct optim_config weights;   /* lr = peak learning rate of the weights */
	struct optim_config scales;    /* lr = peak learning rate of the scales */
	long warmup_steps;
	double min_lr_ratio;           /* cosine floor as a fraction of the peak */
	double distill;                /* weight of the distillation term; 1 - distill for CE */
	enum qat_distill_loss distill_loss;
	double temperature;
	double label_smoothing;
	enum qat_act_scales act_scales;
	enum qat_weight_scales weight_scales;
	double ema_constant;           /* QAT_ACT_EMA averaging constant */
	bool augment;                  /* random crop (reflect pad) + horizontal flip */
	int pad;
	uint64_t seed;
	long checkpoint_every;         /* steps; 0 = only at the end */
	long log_every;                /* steps between log lines */
	long eval_every;               /* steps between validation evaluations; 0 = end only */
	long eval_images;              /* images for the periodic evaluations (0 = all) */
	struct qcal_progress progress;
};

void qat_options_default(struct qat_options *o);

struct qat_session;

/*
 * A session trains model (the float checkpoint) from scales (a calibration
 * of it) on train.  out_dir receives the checkpoint, the log and the
 * results.  With resume, the checkpoint in out_dir is loaded and training
 * continues where it stopped (options must match the interrupted run's).
 */
enum qcal_status qat_session_create(struct qat_session **out,
				    const struct swin_model *model,
				    const struct scale_table *scales,
				    const struct dataset *train,
				    const struct qat_options *opt,
				    const char *out_dir, bool resume,
				    struct qcal_err *err);
void qat_session_free(struct qat_session *s);

/*
 * Train until the configured number of epochs (or until the progress
 * callback asks to stop, which returns QCAL_ECANCEL after writing a
 * checkpoint).  val (may be NULL) is evaluated every eval_every steps.
 */
enum qcal_status qat_session_run(struct qat_session *s, eval_next_fn val_next,
				 void *val_user, void (*val_rewind)(void *),
				 struct qcal_err *err);

/* Steps done / planned. */
long qat_session_step(const struct qat_session *s);
long qat_session_total_steps(const struct qat_session *s);

/*
 * The current result: scales (table initialised by this call, borrowing
 * points) and the float master weights with the input folding the
 * quantized model uses (model initialised by this call).
 */
enum qcal_status qat_session_result(struct qat_session *s, const struct qp_table *points,
				    struct scale_table *scales, struct swin_model *model,
				    struct qcal_err *err);

/* Evaluate the current quantized model against the float teacher. */
enum qcal_status qat_session_evaluate(struct qat_session *s, eval_next_fn next,
				      void *user, struct metrics *m,
				      struct qcal_err *err);

#endif
