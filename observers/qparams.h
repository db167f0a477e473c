/*
 * Scale and zero point of a clip range, exactly as torch.ao.quantization's
 * UniformQuantizationObserverBase._calculate_qparams (torch 1.13) computes
 * them, in float32 with IEEE rounding:
 *
 *   widen [min, max] to include 0
 *   symmetric:  scale = max(-min, max) / ((qmax - qmin) / 2)
 *               zero point 0 (signed) or 2^(bits-1) (unsigned: torch's 128
 *               for quint8)
 *   affine:     scale = (max - min) / (qmax - qmin)
 *               zero point = clamp(qmin - round_half_even(min / scale))
 *   scale = max(scale, eps)
 *
 * torch runs these steps on float32 tensors with the Python constants
 * rounded to float32, which is what this code reproduces (bit-exact; the
 * tests compare with torch).  int32 is the exception: there (qmax - qmin)
 * is not a float32 and min / scale overflows an int, so the division runs
 * in double and the zero point in 64 bits before the clamp.
 */
#ifndef QCAL_OBSERVERS_QPARAMS_H
#define QCAL_OBSERVERS_QPARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/status.h"

/*
 * Scale and zero point for values clipped to [min, max] (finite, min <= max)
 * with dtype's full range.  eps > 0 is the smallest scale.  QCAL_EINVAL for
 * a float dtype or a bad range, QCAL_ERANGE when the scale overflows
 * float32 (a range wider than FLT_MAX).
 */
enum qcal_status qparams_from_range(enum qcal_dtype dtype, bool symmetric,
				    float eps, float min, float max,
				    float *scale, int32_t *zero_point,
				    struct qcal_err *err);

#endif
