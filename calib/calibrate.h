/*
 * The calibration engine: run the float model over images in OBSERVE mode,
 * feed every quantization point's tensor to its observer, and turn the
 * observers' ranges into a scale table according to the resolved config.
 *
 * Points whose config fixes the scale (the J5 input at 1/128) are still
 * observed, so the scale file records their observed range too.  Weights
 * are observed directly from the parameters (per output channel), without
 * data.  Each activation tensor is split over the threads inside its
 * observer (observer_update_parallel), with a result independent of the
 * thread count.
 */
#ifndef QCAL_CALIB_CALIBRATE_H
#define QCAL_CALIB_CALIBRATE_H

#include "calib/evaluate.h"
#include "calib/qconfig.h"
#include "calib/scales.h"
#include "core/progress.h"
#include "model/swin_model.h"

struct calib_options {
	int batch;
	int threads;
	size_t total;                /* expected images, for progress */
	const char *observer;        /* non-NULL: override every activation observer */
	struct qcal_progress progress;
};

struct calib_session;

/*
 * Prepare a session for model (the float checkpoint) and config: resolves
 * the config against the model's points, folds the input normalisation if
 * the config asks for it, and creates the observers.
 */
enum qcal_status calib_session_create(struct calib_session **out,
				      const struct swin_model *model,
				      const struct qconfig *config,
				      const struct calib_options *opt,
				      struct qcal_err *err);
void calib_session_free(struct calib_session *s);

/* The model the session feeds (folded when the config folds the input):
 * batches must be normalised for it. */
const struct swin_model *calib_session_model(const struct calib_session *s);
const struct qp_table *calib_session_points(const struct calib_session *s);

/* Observe the images next() delivers. */
enum qcal_status calib_session_observe(struct calib_session *s, eval_next_fn next,
				       void *next_user, size_t *images,
				       struct qcal_err *err);

/*
 * Assign scales (out initialised by this call).  points is the caller's
 * point table for the same model (the scale table borrows it, so it must
 * outlive out and may outlive the session).  Fails naming every point that
 * could not get a scale (no finite data seen, ...).
 */
enum qcal_status calib_session_scales(struct calib_session *s,
				      const struct qp_table *points,
				      struct scale_table *out,
				      struct qcal_err *err);

#endif
