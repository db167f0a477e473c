/*
 * torch.ao's _calculate_qparams in C; see qparams.h for the formulas and
 * why int32 takes a wider path.  Every float32 step below is one tensor op
 * in torch, in the same order, so the results are bit-identical.
 */
#include "observers/qparams.h"

#include <math.h>

enum qcal_status qparams_from_range(enum qcal_dtype dtype, bool symmetric,
				    float eps, float min, float max,
				    float *scale, int32_t *zero_point,
				    struct qcal_err *err)
{
	int64_t qmin, qmax;
	float min_neg, max_pos, s;
	int64_t zp = 0;

	if (dtype == QCAL_DTYPE_FLOAT || qcal_dtype_bits(dtype) == 0)
		return qcal_err_set(err, QCAL_EINVAL,
				    "qparams for dtype %s: expected an integer dtype",
				    qcal_dtype_name(dtype));
	if (!isfinite(min) || !isfinite(max) || !(min <= max))
		return qcal_err_set(err, QCAL_EINVAL,
				    "qparams for range [%g, %g]: expected finite min <= max",
				    (double)min, (double)max);
	if (!(eps > 0) || !isfinite(eps))
		return qcal_err_set(err, QCAL_EINVAL,
				    "qparams with eps %g: expected a finite eps > 0",
				    (double)eps);
	qcal_dtype_range(dtype, &qmin, &qmax);
	min_neg = min < 0.0f ? min : 0.0f;
	max_pos = max > 0.0f ? max : 0.0f;

	if (dtype == QCAL_DTYPE_INT32) {
		double range;

		if (symmetric) {
			range = fmax(-(double)min_neg, (double)max_pos);
			s = (float)(range / ((double)(qmax - qmin) / 2.0));
		} else {
			range = (double)max_pos - (double)min_neg;
			s = (float)(range / (double)(qmax - qmin));
		}
		s = s > eps ? s : eps;
		if (!symmetric) {
			double z = (double)qmin - nearbyint((double)min_neg / (double)s);
			zp = z < (double)qmin ? qmin : z > (double)qmax ? qmax : (int64_t)z;
		}
	} else if (symmetric) {
		float m = -min_neg > max_pos ? -min_neg : max_pos;

		s = m / ((float)(qmax - qmin) / 2.0f);
		s = s > eps ? s : eps;
		if (!qcal_dtype_is_signed(dtype))
			zp = (qmin + qmax + 1) / 2;
	} else {
		s = (max_pos - min_neg) / (float)(qmax - qmin);
		s = s > eps ? s : eps;
		/* |min_neg / s| <= qmax - qmin here, so the conversion is safe */
		zp = qmin - (int64_t)nearbyintf(min_neg / s);
		zp = zp < qmin ? qmin : zp > qmax ? qmax : zp;
	}
	if (!isfinite(s))
		return qcal_err_set(err, QCAL_ERANGE,
				    "qparams for range [%g, %g] in %s: the scale overflows float32",
				    (double)min, (double)max, qcal_dtype_name(dtype));
	*scale = s;
	*zero_point = (int32_t)zp;
	return QCAL_OK;
}
