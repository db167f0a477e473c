/*
 * Atomic output files: every file qcal writes (scale files, logits, reports,
 * checkpoints) is written under a temporary name in the destination's own
 * directory, flushed and fsync'ed, and only then renamed over the final path.
 * A crash, a full disk or a failed write therefore leaves either the old file
 * or nothing, never a half-written one.
 *
 * Two styles: a stdio stream (qcal_afile_open/commit) for text and JSON, and a
 * bare temporary path (qcal_atomic_tmp_path/qcal_atomic_rename) for writers
 * such as HDF5 that open the file themselves.
 */
#ifndef QCAL_CORE_ATOMIC_FILE_H
#define QCAL_CORE_ATOMIC_FILE_H

#include <stdio.h>

#include "core/status.h"

struct qcal_afile {
	FILE *fp;         /* write here */
	char *final_path; /* owned */
	char *tmp_path;   /* owned */
};

/* Create "<path>.tmp.<pid>.<n>" and open it for writing. */
enum qcal_status qcal_afile_open(struct qcal_afile *af, const char *path,
				 struct qcal_err *err);

/*
 * Flush, fsync, close and rename into place.  On any failure (including a
 * write error remembered by the stream, e.g. ENOSPC) the temporary file is
 * removed, the destination is untouched and an error naming the path is
 * returned.  af is released in every case.
 */
enum qcal_status qcal_afile_commit(struct qcal_afile *af, struct qcal_err *err);

/* Close and remove the temporary file; destination untouched.  NULL-safe. */
void qcal_afile_abort(struct qcal_afile *af);

/*
 * Temporary path beside path (caller frees).  Returns NULL on allocation
 * failure.
 */
char *qcal_atomic_tmp_path(const char *path);

/*
 * fsync tmp_path and rename it to path; on failure remove tmp_path and report.
 */
enum qcal_status qcal_atomic_rename(const char *tmp_path, const char *path,
				    struct qcal_err *err);

/* Write a whole buffer atomically. */
enum qcal_status qcal_write_file_atomic(const char *path, const void *data,
				       size_t size, struct qcal_err *err);

/* Read a whole file into a NUL-terminated malloc'ed buffer (size excludes NUL). */
enum qcal_status qcal_read_file(const char *path, char **data, size_t *size,
				struct qcal_err *err);

#endif
