/* xoshiro256** (Blackman & Vigna), written from the published algorithm. */
#include "core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void qcal_rng_seed(struct qcal_rng *rng, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		rng->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t qcal_rng_u64(struct qcal_rng *rng)
{
	uint64_t *s = rng->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

uint64_t qcal_rng_below(struct qcal_rng *rng, uint64_t n)
{
	/* Rejection keeps every value equally likely. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;

	do
		x = qcal_rng_u64(rng);
	while (x >= limit);
	return x % n;
}

float qcal_rng_uniform(struct qcal_rng *rng)
{
	return (float)(qcal_rng_u64(rng) >> 40) * (1.0f / 16777216.0f);
}

float qcal_rng_normal(struct qcal_rng *rng)
{
	double u1 = ((double)(qcal_rng_u64(rng) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
	double u2 = (double)(qcal_rng_u64(rng) >> 11) * (1.0 / 9007199254740992.0);
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
