/*
 * Branch-free float32 exp and erf that the compiler can vectorise inside
 * loops (the libm calls cannot be, and GELU's erf alone cost a fifth of the
 * Swin-T forward).  Coefficients are least-squares polynomial fits made for
 * qcal (tools/fit_vmath.py regenerates them).
 *
 * Accuracy, checked on dense grids by tests/model/test_vmath.c:
 *   vm_expf: <= 1 ulp on [-87, 88]; exactly 0 below -87.3 (softmax of masked
 *            or far-below-max entries), +inf above 88.7.
 *   vm_erff: absolute error <= 2e-7 everywhere (about 2 ulp near |erf| = 1),
 *            so exact-GELU built on it is within 1.2e-7 * |x| of the truth.
 */
#ifndef QCAL_MODEL_VMATH_H
#define QCAL_MODEL_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float vm_bits_to_float(int32_t bits)
{
	float f;
	memcpy(&f, &bits, sizeof(f));
	return f;
}

/* Horner step: one rounding with hardware FMA (exact and deterministic);
 * plain multiply-add where the target has none. */
static inline float vm_madd(float a, float b, float c)
{
#ifdef __FMA__
	return fmaf(a, b, c);
#else
	return a * b + c;
#endif
}

static inline float vm_expf(float x)
{
	/* exp(x) = 2^n * exp(r), r = x - n ln2 in [-ln2/2, ln2/2] (Cody-Waite split).
	 * The clamps are written so that NaN fails both tests and lands in
	 * range: converting a NaN n to an integer would be undefined. */
	float xc = x > -87.33f ? x : -87.33f;
	xc = xc < 88.3f ? xc : 88.3f;
	float n = nearbyintf(xc * 1.44269504088896341f);
	float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
	float p = 1.9894805154763162e-4f;
	p = vm_madd(p, r, 1.3929606648162007e-3f);
	p = vm_madd(p, r, 8.333303965628147e-3f);
	p = vm_madd(p, r, 4.166650399565697e-2f);
	p = vm_madd(p, r, 1.666666716337204e-1f);
	p = vm_madd(p, r, 0.5f);
	float e = (r * r * p + r) + 1.0f;
	float res = e * vm_bits_to_float(((int32_t)n + 127) << 23);
	res = x < -87.33f ? 0.0f : res;
	res = x != x ? x : res;
	return x > 88.72f ? INFINITY : res;
}

static inline float vm_erff(float x)
{
	float ax = fabsf(x);
	/* |x| < 1: erf(x) = x * P(x^2) */
	float t = ax * ax;
	float s = 8.006874122656882e-05f;
	s = vm_madd(s, t, -8.053751080296934e-04f);
	s = vm_madd(s, t, 5.192957818508148e-03f);
	s = vm_madd(s, t, -2.68560703843832e-02f);
	s = vm_madd(s, t, 1.1283634603023529e-01f);
	s = vm_madd(s, t, -3.761262893676758e-01f);
	s = vm_madd(s, t, 1.128379225730896f);
	float small = ax * s;
	/* 1 <= |x| < 4: erf(x) = 1 - exp(-x^2) Q(u), u = (2|x| - 5) / 3 */
	float ac = ax > 4.0f ? 4.0f : ax;
	ac = ac < 1.0f ? 1.0f : ac;
	float u = (2.0f * ac - 5.0f) * (1.0f / 3.0f);
	float q = 1.358284043817548e-05f;
	q = vm_madd(q, u, -3.6267374525777996e-05f);
	q = vm_madd(q, u, 5.560991121456027e-05f);
	q = vm_madd(q, u, -1.4563782315235585e-04f);
	q = vm_madd(q, u, 4.138159565627575e-04f);
	q = vm_madd(q, u, -1.0155620984733105e-03f);
	q = vm_madd(q, u, 2.4020320270210505e-03f);
	q = vm_madd(q, u, -5.567952990531921e-03f);
	q = vm_madd(q, u, 1.2489632703363895e-02f);
	q = vm_madd(q, u, -2.7005625888705254e-02f);
	q = vm_madd(q, u, 5.6110478937625885e-02f);
	q = vm_madd(q, u, -1.1152100563049316e-01f);
	q = vm_madd(q, u, 2.1080636978149414e-01f);
	float large = 1.0f - q * vm_expf(-(ac * ac));
	float r = ax < 1.0f ? small : large;
	r = ax >= 4.0f ? 1.0f : r;
	return copysignf(r, x);
}

#endif
