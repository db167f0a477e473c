/* NaN/Inf search; see finite.h. */
#include "core/finite.h"

#include <math.h>

size_t qcal_first_non_finite(const float *x, size_t n, size_t *count)
{
	size_t first = n, bad = 0;

	for (size_t i = 0; i < n; i++)
		if (!isfinite(x[i])) {
			if (bad++ == 0) {
				first = i;
				if (!count)
					break;
			}
		}
	if (count)
		*count = bad;
	return first;
}
