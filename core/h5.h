/*
 * Small HDF5 helpers for the files qcal reads and writes besides checkpoints:
 * reference fixtures, `qcal infer` inputs and logits, saved logits, HDF5
 * scale files.  Each call opens nothing itself; the caller owns the hid_t.
 * HDF5's stderr error printing is disabled by qcal_h5_quiet() so every
 * failure reaches the user once, through struct qcal_err.
 */
#ifndef QCAL_CORE_H5_H
#define QCAL_CORE_H5_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

#define QCAL_H5_MAX_DIMS 8

struct qcal_h5_shape {
	int ndim;
	int64_t dims[QCAL_H5_MAX_DIMS];
};

size_t qcal_h5_shape_numel(const struct qcal_h5_shape *shape);

/* Switch off HDF5's automatic error printing (idempotent). */
void qcal_h5_quiet(void);

/* Open an existing file read-only, with a clear error for a missing, non-HDF5
 * or truncated file.  Returns a file id or -1. */
hid_t qcal_h5_open_read(const char *path, struct qcal_err *err);

/*
 * Read a numeric dataset (any float or integer type, converted) as float32
 * into a malloc'ed buffer.  shape may be NULL.
 */
enum qcal_status qcal_h5_read_float(hid_t file, const char *path,
				    const char *name, float **data,
				    struct qcal_h5_shape *shape,
				    struct qcal_err *err);
/* Same, as int64. */
enum qcal_status qcal_h5_read_int64(hid_t file, const char *path,
				    const char *name, int64_t **data,
				    struct qcal_h5_shape *shape,
				    struct qcal_err *err);

/*
 * Output files.  qcal_h5_create() starts a file in memory (HDF5's core
 * driver, no backing store) and qcal_h5_commit() serialises it and writes
 * the image with qcal_write_file_atomic(): HDF5 itself never writes to the
 * disk, so a full disk or a file-size limit is an ordinary write error with
 * the temporary file removed and the destination untouched.  (HDF5 1.10
 * leaves an on-disk file whose flush failed half-closed and crashes closing
 * it again at exit.)  path only names the file in messages until commit.
 */
hid_t qcal_h5_create(const char *path, struct qcal_err *err);
/* Write file to path atomically and close it; closed on failure too. */
enum qcal_status qcal_h5_commit(hid_t file, const char *path, struct qcal_err *err);
/* Close a file from qcal_h5_create without writing anything.  -1 is ignored. */
void qcal_h5_discard(hid_t file);

/* Write datasets (intermediate groups are created as needed). */
int qcal_h5_write_float(hid_t file, const char *name, const float *data,
			int ndim, const int64_t *dims);
int qcal_h5_write_int64(hid_t file, const char *name, const int64_t *data,
			int ndim, const int64_t *dims);
int qcal_h5_write_int32(hid_t file, const char *name, const int32_t *data,
			int ndim, const int64_t *dims);
int qcal_h5_write_int8(hid_t file, const char *name, const int8_t *data,
		       int ndim, const int64_t *dims);
int qcal_h5_write_int16(hid_t file, const char *name, const int16_t *data,
			int ndim, const int64_t *dims);
/* Variable-length UTF-8 string attribute on obj (file or dataset). */
int qcal_h5_write_string_attr(hid_t obj, const char *name, const char *value);
/* String attribute (any HDF5 string flavour), malloc'ed; NULL if absent. */
char *qcal_h5_read_string_attr(hid_t obj, const char *name);

#endif
