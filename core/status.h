/*
 * Status codes and error reports shared by every qcal module.
 *
 * Library code never prints and never exits: a function that can fail returns
 * an enum qcal_status and, when given a struct qcal_err, fills it with one
 * human-readable line that names the file, tensor, key or value at fault and
 * what was expected.  The CLI (tools/) decides what to print and which exit
 * code to use.  A NULL err is allowed everywhere; the status still says what
 * kind of failure happened.
 */
#ifndef QCAL_CORE_STATUS_H
#define QCAL_CORE_STATUS_H

#include <stdarg.h>

enum qcal_status {
	QCAL_OK = 0,
	QCAL_ENOMEM,   /* allocation failed */
	QCAL_EINVAL,   /* caller passed an invalid argument or option */
	QCAL_EIO,      /* a read, write, rename or fsync failed */
	QCAL_EFORMAT,  /* input exists but is malformed (bad file, bad shape, bad key) */
	QCAL_ENOENT,   /* a named file, tensor, point or key does not exist */
	QCAL_ERANGE,   /* a value is outside what the operation supports */
	QCAL_ESTATE,   /* object used in the wrong state (e.g. observer with no data) */
	QCAL_ECANCEL,  /* stopped on request (signal) */
};

#define QCAL_ERR_MSG_MAX 1024

struct qcal_err {
	enum qcal_status status;
	char msg[QCAL_ERR_MSG_MAX];
};

/* Short stable name of a status ("ok", "out of memory", ...). */
const char *qcal_status_name(enum qcal_status status);

/*
 * Record an error and return its status, so that call sites read
 *     return qcal_err_set(err, QCAL_EFORMAT, "%s: tensor %s: ...", path, name);
 * A NULL err only returns the status.
 */
enum qcal_status qcal_err_set(struct qcal_err *err, enum qcal_status status,
			      const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

enum qcal_status qcal_err_vset(struct qcal_err *err, enum qcal_status status,
			       const char *fmt, va_list ap);

/*
 * Prepend context ("weights.h5: ") to an error already recorded, keeping its
 * status.  Returns the recorded status (QCAL_OK if err is NULL or clear).
 */
enum qcal_status qcal_err_prefix(struct qcal_err *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Reset err to QCAL_OK and an empty message.  Accepts NULL. */
void qcal_err_clear(struct qcal_err *err);

#endif
