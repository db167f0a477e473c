/*
 * Binning kernels; see bin.h.  This file alone is compiled with
 * -fno-trapping-math (observers/meson.build): GCC only vectorises floor()
 * and the float-to-int conversions when it may assume that floating-point
 * operations do not trap.  That flag changes no computed value (rounding,
 * NaN and signed-zero semantics stay IEEE; nothing here reads exception
 * flags).
 *
 * One generic, always-inlined pass is specialised by constant arguments
 * into one loop per mode (dyadic in float or double, on x or |x|; linear),
 * with and without a mask, so that each variant vectorises on its own and
 * no branch on the mode sits in a hot loop.  A pass works in blocks of
 * BIN_BLOCK elements: first the indices of the block (vector code, into a
 * small stack array), then the block's min/max lanes (re-read from L1;
 * fusing them into the index loop with explicit vectors measured no
 * faster), then the increments (scalar, rotating over the planes), which
 * bound the speed.
 *
 * The 8 planes are 16-bit counters on the counting thread's stack (half
 * the cache footprint of 32-bit ones, and no allocation per call: a
 * per-call heap block of this size was being trimmed and re-faulted by
 * malloc on every update); they are folded into the group's 32-bit counts
 * every BIN_FOLD_BLOCKS blocks, before any can overflow.
 */
#include "observers/bin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "observers/scan.h"

#define BIN_BLOCK 512
#define BIN_PLANES 8
/* 8 planes pay off once a slice has this many elements per histogram slot */
#define BIN_PLANES_MIN_FILL 16
/* 16-bit planes live on the thread's stack: up to 4096 bins (66 KB) */
#define BIN_PLANE_STRIDE_MAX (4096 + 32)
/* blocks between folds of the 16-bit planes: a plane slot gets at most
 * 1/8 of them plus the block tails, 256 * 512 / 8 + 256 * 7 < 65536 */
#define BIN_FOLD_BLOCKS 256
/* a thread is worth its fork/join beyond this many elements */
#define BIN_MIN_PER_GROUP ((size_t)1 << 15)

enum pass_mode {
	PASS_DYADIC_F,      /* x / 2^exp in float (2^-exp a float >= 2^-149) */
	PASS_DYADIC_ABS_F,
	PASS_DYADIC_D,      /* in double (exact for every exponent) */
	PASS_DYADIC_ABS_D,
	PASS_LINEAR,
};

enum qcal_status bin_planes_init(struct bin_planes *p, int bins, size_t n,
				 int threads, struct qcal_err *err)
{
	/* every group's counts start on a fresh cache line */
	size_t stride = ((size_t)bins + 1 + 31) & ~(size_t)31, slice;
	int groups = threads < 1 ? 1 : threads > BIN_MAX_GROUPS ? BIN_MAX_GROUPS : threads;
	int planes = 1;

	while (groups > 1 && n / (size_t)groups < BIN_MIN_PER_GROUP)
		groups--;
	slice = n / (size_t)groups;
	if (slice / BIN_PLANES_MIN_FILL >= (size_t)bins + 1 && stride <= BIN_PLANE_STRIDE_MAX)
		planes = BIN_PLANES;
	p->bins = bins;
	p->groups = groups;
	p->planes = planes;
	p->stride = stride;
	p->c = calloc(stride * (size_t)groups, sizeof(uint32_t));
	if (!p->c)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "observer scratch of %d x %zu counters: out of memory",
				    groups, stride);
	return QCAL_OK;
}

void bin_planes_free(struct bin_planes *p)
{
	if (p) {
		free(p->c);
		p->c = NULL;
	}
}

void bin_planes_clear(struct bin_planes *p)
{
	memset(p->c, 0, p->stride * (size_t)p->groups * sizeof(uint32_t));
}

uint64_t bin_planes_dumped(const struct bin_planes *p)
{
	uint64_t d = 0;

	for (int g = 0; g < p->groups; g++)
		d += p->c[(size_t)g * p->stride + (size_t)p->bins];
	return d;
}

const uint32_t *bin_planes_fold(struct bin_planes *p)
{
	for (int g = 1; g < p->groups; g++) {
		uint32_t *src = p->c + (size_t)g * p->stride;

		for (int i = 0; i <= p->bins; i++)
			p->c[i] += src[i];
		memset(src, 0, p->stride * sizeof(uint32_t));
	}
	p->groups = 1;
	return p->c;
}

/*
 * Indices of the block x[0..m).  Dyadic modes: a = 2^-exp, b = origin
 * (integers and powers of two, so every step below is exact: see bin.h);
 * linear: a = lo, b = hi.  The loop is branch-free (bitwise &, selects) so
 * that it vectorises.
 */
static inline __attribute__((always_inline)) void
index_block(const float *restrict x, const uint8_t *restrict keep, size_t m,
	    double a, double b, uint32_t nb, const enum pass_mode mode,
	    const bool masked, uint32_t *restrict idx)
{
	const float nbf = (float)nb, af = (float)a, bf = (float)b;
	const double nbd = (double)nb;

	for (size_t i = 0; i < m; i++) {
		float v = x[i];
		uint32_t u;

		if (mode == PASS_LINEAR) {
			/* torch.histc: ((v - lo) * bins) / (hi - lo), hi itself in the last bin */
			float f = ((v - af) * nbf) / (bf - af);

			f = f < nbf ? f : nbf - 1.0f;
			f = (v >= af) & (v <= bf) ? f : nbf;
			u = (uint32_t)f;
		} else if (mode == PASS_DYADIC_F || mode == PASS_DYADIC_ABS_F) {
			float s = mode == PASS_DYADIC_ABS_F ? fabsf(v) : v;
			float t = s * af, f = floorf(t);

			/* a negative product that underflowed to -0 is still in
			 * cell -1 (rounding cannot otherwise cross an integer) */
			f = (s < 0.0f) & (t == 0.0f) ? -1.0f : f;
			f -= bf;
			/* NaN, Inf and values outside the window fail the test */
			f = (f >= 0.0f) & (f < nbf) ? f : nbf;
			u = (uint32_t)f;
		} else {
			double t = (double)(mode == PASS_DYADIC_ABS_D ? fabsf(v) : v);
			double d = floor(t * a) - b;

			d = (d >= 0.0) & (d < nbd) ? d : nbd;
			u = (uint32_t)d;
		}
		if (masked)
			u = keep[i] ? u : nb;
		idx[i] = u;
	}
}

/* Increments rotating over 8 16-bit planes (tails on the first). */
static void scatter8(uint16_t *c, size_t stride, const uint32_t *idx, size_t m)
{
	uint16_t *c0 = c, *c1 = c + stride, *c2 = c + 2 * stride,
		 *c3 = c + 3 * stride, *c4 = c + 4 * stride,
		 *c5 = c + 5 * stride, *c6 = c + 6 * stride,
		 *c7 = c + 7 * stride;
	size_t i = 0;

	for (; i + BIN_PLANES <= m; i += BIN_PLANES) {
		c0[idx[i]]++;
		c1[idx[i + 1]]++;
		c2[idx[i + 2]]++;
		c3[idx[i + 3]]++;
		c4[idx[i + 4]]++;
		c5[idx[i + 5]]++;
		c6[idx[i + 6]]++;
		c7[idx[i + 7]]++;
	}
	for (; i < m; i++)
		c0[idx[i]]++;
}

static void scatter1(uint32_t *c, const uint32_t *idx, size_t m)
{
	for (size_t i = 0; i < m; i++)
		c[idx[i]]++;
}

/* Add the planes into the counts and zero them. */
static void fold_planes(uint32_t *c, uint16_t *planes, size_t stride, int bins)
{
	for (int k = 0; k < BIN_PLANES; k++) {
		uint16_t *pl = planes + (size_t)k * stride;

		for (int i = 0; i <= bins; i++)
			c[i] += pl[i];
	}
	memset(planes, 0, BIN_PLANES * stride * sizeof(uint16_t));
}

/* One thread's slice into one group of planes. */
static inline __attribute__((always_inline)) void
pass_generic(uint32_t *c, size_t stride, int planes, int bins,
	     const float *restrict x, const uint8_t *restrict keep, size_t n,
	     double a, double b, const enum pass_mode mode, const bool masked,
	     struct bin_result *res)
{
	/* the planes are this thread's: on its stack, no allocation */
	uint16_t buf[BIN_PLANES * BIN_PLANE_STRIDE_MAX];
	struct scan_lanes l;
	uint32_t idx[BIN_BLOCK];
	uint64_t kept;
	size_t blocks = 0;

	if (planes == BIN_PLANES)
		memset(buf, 0, BIN_PLANES * stride * sizeof(uint16_t));
	scan_lanes_init(&l);
	for (size_t off = 0; off < n; off += BIN_BLOCK) {
		size_t m = n - off < BIN_BLOCK ? n - off : BIN_BLOCK;
		const float *xb = x + off;
		const uint8_t *kb = masked ? keep + off : NULL;
		size_t i = 0;

		/* the scatter below leaves the memory pipe idle: ask for the
		 * block after next meanwhile (tensors stream from DRAM) */
		if (off + 3 * BIN_BLOCK <= n)
			for (size_t j = 0; j < BIN_BLOCK; j += 16)
				__builtin_prefetch(x + off + 2 * BIN_BLOCK + j);
		index_block(xb, kb, m, a, b, (uint32_t)bins, mode, masked, idx);
		/* the block is in L1 now: its min/max lanes cost little */
		for (; i + SCAN_LANES <= m; i += SCAN_LANES) {
			if (masked)
				scan_lanes_add_masked(&l, xb + i, kb + i);
			else
				scan_lanes_add(&l, xb + i);
		}
		for (; i < m; i++) {
			int k = !masked || kb[i];

			scan_lanes_add_one(&l, k ? xb[i] : NAN, k);
		}
		if (planes == BIN_PLANES) {
			scatter8(buf, stride, idx, m);
			if (++blocks == BIN_FOLD_BLOCKS) {
				fold_planes(c, buf, stride, bins);
				blocks = 0;
			}
		} else {
			scatter1(c, idx, m);
		}
	}
	if (planes == BIN_PLANES && blocks)
		fold_planes(c, buf, stride, bins);
	scan_lanes_fold(&l, &res->min, &res->max, &res->nanlike, &kept);
	res->kept = masked ? kept : n;
}

/* The specialisations: mode and mask are constants in each. */
#define PASS_VARIANT(name, mode, masked)                                          \
	static void __attribute__((noinline))                                     \
	name(uint32_t *c, size_t stride, int planes, int bins, const float *x,    \
	     const uint8_t *keep, size_t n, double a, double b,                   \
	     struct bin_result *res)                                              \
	{                                                                         \
		pass_generic(c, stride, planes, bins, x, keep, n, a, b, mode,     \
			     masked, res);                                        \
	}
PASS_VARIANT(pass_dyadic_f, PASS_DYADIC_F, false)
PASS_VARIANT(pass_dyadic_abs_f, PASS_DYADIC_ABS_F, false)
PASS_VARIANT(pass_dyadic_d, PASS_DYADIC_D, false)
PASS_VARIANT(pass_dyadic_abs_d, PASS_DYADIC_ABS_D, false)
PASS_VARIANT(pass_linear_plain, PASS_LINEAR, false)
PASS_VARIANT(pass_dyadic_f_masked, PASS_DYADIC_F, true)
PASS_VARIANT(pass_dyadic_abs_f_masked, PASS_DYADIC_ABS_F, true)
PASS_VARIANT(pass_dyadic_d_masked, PASS_DYADIC_D, true)
PASS_VARIANT(pass_dyadic_abs_d_masked, PASS_DYADIC_ABS_D, true)
PASS_VARIANT(pass_linear_masked, PASS_LINEAR, true)

typedef void (*pass_fn)(uint32_t *c, size_t stride, int planes, int bins,
			const float *x, const uint8_t *keep, size_t n, double a,
			double b, struct bin_result *res);

/* Run fn over n elements, one slice per group, and combine the results. */
static void run_pass(struct bin_planes *p, pass_fn fn, const float *x,
		     const uint8_t *keep, size_t n, double a, double b,
		     struct bin_result *res)
{
	struct bin_result part[BIN_MAX_GROUPS];
	const int G = p->groups;
	const size_t group_size = p->stride;

	#pragma omp parallel for num_threads(G) schedule(static, 1) if (G > 1)
	for (int g = 0; g < G; g++) {
		size_t lo = n * (size_t)g / (size_t)G, hi = n * (size_t)(g + 1) / (size_t)G;

		fn(p->c + (size_t)g * group_size, p->stride, p->planes, p->bins,
		   x + lo, keep ? keep + lo : NULL, hi - lo, a, b, &part[g]);
	}
	*res = part[0];
	for (int g = 1; g < G; g++) {
		res->min = part[g].min < res->min ? part[g].min : res->min;
		res->max = part[g].max > res->max ? part[g].max : res->max;
		res->nanlike += part[g].nanlike;
		res->kept += part[g].kept;
	}
}

void bin_pass_dyadic(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, int exp, int64_t origin, bool of_abs,
		     struct bin_result *res)
{
	/* float when 2^-exp is a float (normal up to 2^126, or a subnormal
	 * power of two): then t = v * 2^-exp is exact unless it underflows,
	 * and an underflowed t has the floor of the exact one (0, or -1 kept
	 * by the -0 test) */
	bool f = exp >= -126 && exp <= 149;
	pass_fn fn;

	if (keep)
		fn = f ? (of_abs ? pass_dyadic_abs_f_masked : pass_dyadic_f_masked)
		       : (of_abs ? pass_dyadic_abs_d_masked : pass_dyadic_d_masked);
	else
		fn = f ? (of_abs ? pass_dyadic_abs_f : pass_dyadic_f)
		       : (of_abs ? pass_dyadic_abs_d : pass_dyadic_d);
	run_pass(p, fn, x, keep, n, ldexp(1.0, -exp), (double)origin, res);
}

void bin_pass_linear(struct bin_planes *p, const float *x, const uint8_t *keep,
		     size_t n, float lo, float hi, struct bin_result *res)
{
	run_pass(p, keep ? pass_linear_masked : pass_linear_plain, x, keep, n, lo, hi, res);
}
