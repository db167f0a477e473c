/*
 * Progress reporting from library loops (calibration, evaluation, QAT) to
 * whoever drives them.  Library code only calls the callback; the CLI turns
 * it into a progress bar on a terminal or periodic lines in a log.
 */
#ifndef QCAL_CORE_PROGRESS_H
#define QCAL_CORE_PROGRESS_H

#include <stddef.h>

/*
 * done/total in the loop's own unit (images, steps); status is a short
 * free-form text ("loss 0.41 lr 2e-4") or NULL.  Returns nonzero to ask the
 * loop to stop early (it then returns QCAL_ECANCEL).
 */
typedef int (*qcal_progress_fn)(void *user, size_t done, size_t total,
				const char *status);

struct qcal_progress {
	qcal_progress_fn fn; /* NULL: no reporting */
	void *user;
};

static inline int qcal_progress_report(const struct qcal_progress *p,
				       size_t done, size_t total,
				       const char *status)
{
	return p && p->fn ? p->fn(p->user, done, total, status) : 0;
}

#endif
