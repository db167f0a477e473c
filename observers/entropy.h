/*
 * TensorRT-style entropy calibration (private to observers/; the tests use
 * it directly): pick the histogram threshold whose quantized distribution
 * is closest, in Kullback-Leibler divergence, to the clipped reference.
 *
 * For a histogram b[0..used) of |x| (cells of equal width from 0) and each
 * candidate threshold of i cells, levels <= i <= used:
 *   P = b[0..i), with the mass beyond (b[i..used)) added to P[i-1];
 *   Q = b[0..i) merged into `levels` groups - cell j joins group
 *       floor(j * levels / i) - and each group's count spread evenly over
 *       its non-empty cells (empty cells stay empty);
 *   KL(P || Q) after normalising both, +inf if P has mass where Q has none.
 * The threshold is the i with the smallest divergence, the largest such i
 * on ties.  This is the algorithm of NVIDIA's 8-bit inference talk
 * (Migacz, GTC 2017) that TensorRT's entropy calibrators implement and
 * pytorch-quantization's _compute_amax_entropy reproduces (see
 * observers/README.md for the details that differ between them).
 */
#ifndef QCAL_OBSERVERS_ENTROPY_H
#define QCAL_OBSERVERS_ENTROPY_H

#include <stdint.h>

#include "core/status.h"

/*
 * The best threshold i (in cells) for a histogram with used > 0 cells, or
 * `used` when levels >= used (the quantization is finer than the
 * histogram: nothing to gain from clipping).  *kl receives its divergence
 * (0 in that case).  O(used * levels); QCAL_ENOMEM (prefix sums).
 */
enum qcal_status entropy_kl_search(const uint64_t *counts, int used,
				   int64_t levels, int *best, double *kl,
				   struct qcal_err *err);

/* The divergence at one threshold i, straight from the definition: the
 * O(used) twin of the search's prefix-sum formula (tests). */
double entropy_kl_naive(const uint64_t *counts, int used, int i, int64_t levels);

#endif
