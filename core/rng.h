/*
 * Seeded pseudo-random numbers (xoshiro256** seeded through splitmix64).
 * Every consumer owns its own state, so sampling, augmentation and weight
 * initialisation are reproducible and checkpointable (the state is four
 * words that a QAT checkpoint saves verbatim).  No global generator exists.
 */
#ifndef QCAL_CORE_RNG_H
#define QCAL_CORE_RNG_H

#include <stdint.h>

struct qcal_rng {
	uint64_t s[4];
};

void qcal_rng_seed(struct qcal_rng *rng, uint64_t seed);
uint64_t qcal_rng_u64(struct qcal_rng *rng);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint64_t qcal_rng_below(struct qcal_rng *rng, uint64_t n);
/* Uniform float in [0, 1) with 24 random bits. */
float qcal_rng_uniform(struct qcal_rng *rng);
/* Standard normal (Box-Muller, one value per call). */
float qcal_rng_normal(struct qcal_rng *rng);

#endif
