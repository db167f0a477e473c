/*
 * Finding NaN and Inf in float buffers: checkpoints, input tensors and
 * logits are checked with it so that a non-finite value is refused where it
 * enters, naming where it is, instead of passing silently through argmax
 * or a clamp.
 */
#ifndef QCAL_CORE_FINITE_H
#define QCAL_CORE_FINITE_H

#include <stddef.h>

/* Index of the first NaN or Inf in x[0..n), or n if every value is finite.
 * count, when not NULL, receives how many there are. */
size_t qcal_first_non_finite(const float *x, size_t n, size_t *count);

#endif
