/*
 * Integer storage types of a quantized tensor and their ranges.  Shared by
 * observers (which size their ranges by it), the fake-quant kernels, configs
 * and scale files (which name dtypes by qcal_dtype_name()).
 */
#ifndef QCAL_CORE_DTYPE_H
#define QCAL_CORE_DTYPE_H

#include <stdint.h>

enum qcal_dtype {
	QCAL_DTYPE_FLOAT = 0, /* not quantized */
	QCAL_DTYPE_INT4,
	QCAL_DTYPE_UINT4,
	QCAL_DTYPE_INT8,
	QCAL_DTYPE_UINT8,
	QCAL_DTYPE_INT16,
	QCAL_DTYPE_UINT16,
	QCAL_DTYPE_INT32,
};

/* "int8", "uint8", ... or "float"; NULL-free. */
const char *qcal_dtype_name(enum qcal_dtype dtype);
/* Parse a dtype name; returns 0 on success, -1 if unknown. */
int qcal_dtype_parse(const char *name, enum qcal_dtype *dtype);
/* Integer range of a dtype (full range, e.g. -128..127 for int8). */
void qcal_dtype_range(enum qcal_dtype dtype, int64_t *qmin, int64_t *qmax);
int qcal_dtype_bits(enum qcal_dtype dtype);
int qcal_dtype_is_signed(enum qcal_dtype dtype);

#endif
