/* dtype names and ranges; see dtype.h. */
#include "core/dtype.h"

#include <string.h>

static const struct {
	const char *name;
	enum qcal_dtype dtype;
	int bits, is_signed;
} dtypes[] = {
	{ "float", QCAL_DTYPE_FLOAT, 32, 1 },
	{ "int4", QCAL_DTYPE_INT4, 4, 1 },
	{ "uint4", QCAL_DTYPE_UINT4, 4, 0 },
	{ "int8", QCAL_DTYPE_INT8, 8, 1 },
	{ "uint8", QCAL_DTYPE_UINT8, 8, 0 },
	{ "int16", QCAL_DTYPE_INT16, 16, 1 },
	{ "uint16", QCAL_DTYPE_UINT16, 16, 0 },
	{ "int32", QCAL_DTYPE_INT32, 32, 1 },
};

const char *qcal_dtype_name(enum qcal_dtype dtype)
{
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (dtypes[i].dtype == dtype)
			return dtypes[i].name;
	return "unknown";
}

int qcal_dtype_parse(const char *name, enum qcal_dtype *dtype)
{
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (strcmp(dtypes[i].name, name) == 0) {
			*dtype = dtypes[i].dtype;
			return 0;
		}
	return -1;
}

int qcal_dtype_bits(enum qcal_dtype dtype)
{
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (dtypes[i].dtype == dtype)
			return dtypes[i].bits;
	return 0;
}

int qcal_dtype_is_signed(enum qcal_dtype dtype)
{
	for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
		if (dtypes[i].dtype == dtype)
			return dtypes[i].is_signed;
	return 1;
}

void qcal_dtype_range(enum qcal_dtype dtype, int64_t *qmin, int64_t *qmax)
{
	int bits = qcal_dtype_bits(dtype);

	if (dtype == QCAL_DTYPE_FLOAT) {
		*qmin = INT64_MIN;
		*qmax = INT64_MAX;
	} else if (qcal_dtype_is_signed(dtype)) {
		*qmin = -((int64_t)1 << (bits - 1));
		*qmax = ((int64_t)1 << (bits - 1)) - 1;
	} else {
		*qmin = 0;
		*qmax = ((int64_t)1 << bits) - 1;
	}
}
