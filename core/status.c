/*
 * Error reports: one line of text per failure, built with printf formats.
 * Messages longer than QCAL_ERR_MSG_MAX are cut, never overflowed.
 */
#include "core/status.h"

#include <stdio.h>
#include <string.h>

const char *qcal_status_name(enum qcal_status status)
{
	switch (status) {
	case QCAL_OK: return "ok";
	case QCAL_ENOMEM: return "out of memory";
	case QCAL_EINVAL: return "invalid argument";
	case QCAL_EIO: return "I/O error";
	case QCAL_EFORMAT: return "bad format";
	case QCAL_ENOENT: return "not found";
	case QCAL_ERANGE: return "out of range";
	case QCAL_ESTATE: return "invalid state";
	case QCAL_ECANCEL: return "cancelled";
	}
	return "unknown status";
}

enum qcal_status qcal_err_vset(struct qcal_err *err, enum qcal_status status,
			       const char *fmt, va_list ap)
{
	if (err) {
		err->status = status;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return status;
}

enum qcal_status qcal_err_set(struct qcal_err *err, enum qcal_status status,
			      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	qcal_err_vset(err, status, fmt, ap);
	va_end(ap);
	return status;
}

enum qcal_status qcal_err_prefix(struct qcal_err *err, const char *fmt, ...)
{
	char prefix[QCAL_ERR_MSG_MAX];
	char joined[QCAL_ERR_MSG_MAX];
	va_list ap;

	if (!err)
		return QCAL_OK;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	size_t plen = strnlen(prefix, sizeof(joined) - 1);
	size_t mlen = strnlen(err->msg, sizeof(err->msg));
	if (plen + mlen > sizeof(joined) - 1)
		mlen = sizeof(joined) - 1 - plen;
	memcpy(joined, prefix, plen);
	memcpy(joined + plen, err->msg, mlen);
	joined[plen + mlen] = '\0';
	memcpy(err->msg, joined, sizeof(err->msg));
	return err->status;
}

void qcal_err_clear(struct qcal_err *err)
{
	if (err) {
		err->status = QCAL_OK;
		err->msg[0] = '\0';
	}
}
