/* Running accuracy/fidelity sums; see metrics.h. */
#include "calib/metrics.h"

#include <math.h>
#include <string.h>

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
}

int metrics_argmax(const float *x, int K)
{
	int best = 0;

	for (int k = 1; k < K; k++)
		if (x[k] > x[best])
			best = k;
	return best;
}

int metrics_in_topk(const float *x, int K, int label, int k)
{
	int above = 0;

	if (label < 0 || label >= K)
		return 0;
	/* rank = number of logits strictly ahead of the label's */
	for (int j = 0; j < K; j++)
		if (x[j] > x[label] || (x[j] == x[label] && j < label))
			above++;
	return above < k;
}

static double kl_divergence(const float *p_logits, const float *q_logits, int K)
{
	double pm = -INFINITY, qm = -INFINITY, ps = 0, qs = 0, kl = 0;

	for (int k = 0; k < K; k++) {
		pm = fmax(pm, p_logits[k]);
		qm = fmax(qm, q_logits[k]);
	}
	for (int k = 0; k < K; k++) {
		ps += exp(p_logits[k] - pm);
		qs += exp(q_logits[k] - qm);
	}
	double plz = pm + log(ps), qlz = qm + log(qs);
	for (int k = 0; k < K; k++) {
		double lp = p_logits[k] - plz, lq = q_logits[k] - qlz;
		kl += exp(lp) * (lp - lq);
	}
	return kl;
}

void metrics_add(struct metrics *m, const float *logits, const float *ref,
		 const int *labels, int B, int K)
{
	for (int b = 0; b < B; b++) {
		const float *x = logits + (size_t)b * K;
		int label = labels ? labels[b] : -1;
		m->images++;
		if (label >= 0) {
			m->labelled++;
			m->top1 += metrics_argmax(x, K) == label;
			m->top5 += metrics_in_topk(x, K, label, 5);
		}
		if (!ref)
			continue;
		const float *r = ref + (size_t)b * K;
		m->has_float = 1;
		m->agree += metrics_argmax(x, K) == metrics_argmax(r, K);
		if (label >= 0) {
			m->float_top1 += metrics_argmax(r, K) == label;
			m->float_top5 += metrics_in_topk(r, K, label, 5);
		}
		for (int k = 0; k < K; k++) {
			double d = (double)x[k] - r[k];
			m->signal += (double)r[k] * r[k];
			m->noise += d * d;
		}
		m->kl_sum += kl_divergence(r, x, K);
	}
}

void metrics_merge(struct metrics *dst, const struct metrics *src)
{
	dst->images += src->images;
	dst->labelled += src->labelled;
	dst->top1 += src->top1;
	dst->top5 += src->top5;
	dst->float_top1 += src->float_top1;
	dst->float_top5 += src->float_top5;
	dst->agree += src->agree;
	dst->signal += src->signal;
	dst->noise += src->noise;
	dst->kl_sum += src->kl_sum;
	dst->has_float |= src->has_float;
}

double metrics_top1(const struct metrics *m)
{
	return m->labelled ? (double)m->top1 / m->labelled : NAN;
}

double metrics_top5(const struct metrics *m)
{
	return m->labelled ? (double)m->top5 / m->labelled : NAN;
}

double metrics_float_top1(const struct metrics *m)
{
	return m->labelled && m->has_float ? (double)m->float_top1 / m->labelled : NAN;
}

double metrics_agreement(const struct metrics *m)
{
	return m->has_float && m->images ? (double)m->agree / m->images : NAN;
}

double metrics_sqnr_db(const struct metrics *m)
{
	if (!m->has_float)
		return NAN;
	if (m->noise == 0)
		return INFINITY;
	return 10.0 * log10(m->signal / m->noise);
}

double metrics_mean_kl(const struct metrics *m)
{
	return m->has_float && m->images ? m->kl_sum / m->images : NAN;
}
