/*
 * The entropy kind and its KL search (entropy.h).
 *
 * The search evaluates every candidate threshold in O(levels) instead of
 * O(cells) by expanding the divergence over prefix sums: with S the total,
 * C(k), H(k) and Z(k) the prefix sums of b, b log b and [b > 0],
 *   S * KL = H(i-1) + P log P - S log S
 *            - sum over groups g of G_g log(G_g / (Z_g C(i)))
 *            - out * log(G_last / (Z_last C(i)))
 * where G_g, Z_g are a group's count and non-empty cells, P = b[i-1] + out
 * the last reference cell and out the clipped mass.  That makes a 4096-cell
 * search a few milliseconds.
 *
 * TensorRT only calibrates symmetrically.  Here the histogram is of |x|
 * and the threshold T clips both signs: the clip range is
 * [max(min, -T), min(max, T)].  The number of levels is the dtype's
 * half range 2^(bits-1) - the levels a symmetric grid has for |x| - except
 * for an asymmetric observer of one-signed data (softmax outputs), whose
 * whole grid of 2^bits levels covers |x| (pytorch-quantization's
 * "unsigned").  With more levels than occupied cells (16-bit, 32-bit) the
 * histogram cannot see the rounding error and T is max|x|.
 */
#include "observers/entropy.h"

#include <math.h>
#include <stdlib.h>

#include "observers/observer_impl.h"

enum qcal_status entropy_kl_search(const uint64_t *b, int used, int64_t levels,
				   int *best, double *kl, struct qcal_err *err)
{
	double *C, *H, S, log_s, best_kl = INFINITY;
	int32_t *Z;
	int best_i = used;

	*best = used;
	*kl = 0;
	if (levels >= used)
		return QCAL_OK;
	C = malloc(((size_t)used + 1) * (2 * sizeof(double) + sizeof(int32_t)));
	if (!C)
		return qcal_err_set(err, QCAL_ENOMEM,
				    "entropy search over %d cells: out of memory", used);
	H = C + used + 1;
	Z = (int32_t *)(H + used + 1);
	C[0] = H[0] = 0;
	Z[0] = 0;
	for (int j = 0; j < used; j++) {
		double v = (double)b[j];

		C[j + 1] = C[j] + v;
		H[j + 1] = H[j] + (v > 0 ? v * log(v) : 0);
		Z[j + 1] = Z[j] + (b[j] != 0);
	}
	S = C[used];
	log_s = log(S);
	for (int i = (int)levels; i <= used; i++) {
		double out = S - C[i], last = (double)b[i - 1], P = last + out;
		double log_q_total = log(C[i]), t1, t2 = 0, d;

		if (last == 0 && out > 0)
			continue; /* P has mass where Q has none */
		t1 = H[i - 1] + (P > 0 ? P * log(P) : 0) - S * log_s;
		for (int64_t g = 0; g < levels; g++) {
			int64_t lo = (g * i + levels - 1) / levels;
			int64_t hi = ((g + 1) * i + levels - 1) / levels;
			int z = Z[hi] - Z[lo];
			double G, lq;

			if (!z)
				continue;
			G = C[hi] - C[lo];
			lq = log(G / z) - log_q_total;
			t2 += G * lq;
			if (g == levels - 1)
				t2 += out * lq; /* last > 0 here: its cell carries out */
		}
		d = (t1 - t2) / S;
		if (d <= best_kl) {
			best_kl = d;
			best_i = i;
		}
	}
	free(C);
	*best = best_i;
	*kl = best_kl;
	return QCAL_OK;
}

double entropy_kl_naive(const uint64_t *b, int used, int i, int64_t levels)
{
	double S = 0, Sq = 0, out = 0, kl = 0;

	for (int j = 0; j < used; j++) {
		S += (double)b[j];
		if (j < i)
			Sq += (double)b[j];
		else
			out += (double)b[j];
	}
	for (int j = 0; j < i; j++) {
		double p = (double)b[j] + (j == i - 1 ? out : 0), G = 0, q;
		int64_t g = (int64_t)j * levels / i;
		int z = 0;

		if (p == 0)
			continue;
		for (int k = 0; k < i; k++)
			if ((int64_t)k * levels / i == g && b[k]) {
				G += (double)b[k];
				z++;
			}
		q = b[j] ? G / z : 0;
		if (q == 0)
			return INFINITY;
		kl += p / S * log((p / S) / (q / Sq));
	}
	return kl;
}

static enum qcal_status ent_update(struct observer *obs, const float *x,
				   const uint8_t *keep, size_t n, int threads,
				   struct scan_stats *batch, struct qcal_err *err)
{
	return dyhist_update(&obs->u.dy, x, keep, n, threads, batch, err);
}

static enum qcal_status ent_merge(struct observer *dst,
				  const struct observer *src,
				  struct qcal_err *err)
{
	(void)err;
	dyhist_merge(&dst->u.dy, &src->u.dy);
	return QCAL_OK;
}

static enum qcal_status ent_qparams(const struct observer *obs,
				    struct observer_qparams *out,
				    struct qcal_err *err)
{
	const struct dyhist *h = &obs->u.dy;
	int bits = qcal_dtype_bits(obs->opt.dtype);
	bool one_sided = h->min >= 0 || h->max <= 0;
	int64_t levels = (int64_t)1 << (!obs->opt.symmetric && one_sided ? bits : bits - 1);
	float amax = fmaxf(fabsf(h->min), fabsf(h->max)), t;
	int used = dyhist_used(h), best;
	double kl;
	enum qcal_status status;

	status = entropy_kl_search(h->counts, used, levels, &best, &kl, err);
	if (status != QCAL_OK)
		return status;
	t = amax;
	if (best < used) {
		double edge = dyhist_edge(h, best);
		float f = (float)edge;

		/* never below the cell edge the search chose */
		t = (double)f < edge ? nextafterf(f, INFINITY) : f;
	}
	out->clip_mins[0] = fmaxf(h->min, -t);
	out->clip_maxs[0] = fminf(h->max, t);
	return QCAL_OK;
}

static void ent_reset(struct observer *obs)
{
	dyhist_reset(&obs->u.dy);
}

const struct observer_ops observer_entropy_ops = {
	.update = ent_update,
	.merge = ent_merge,
	.compute_qparams = ent_qparams,
	.reset = ent_reset,
};
