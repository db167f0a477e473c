/* Cross-entropy and distillation losses with their logit gradients (loss.h). */
#include "model/loss.h"

#include <math.h>
#include <stddef.h>

/* log sum_k exp(x[k] * inv_t) and the row max it subtracted. */
static double log_sum_exp(const float *x, int K, double inv_t, double *max_out)
{
	double mx = -INFINITY, s = 0.0;

	for (int k = 0; k < K; k++)
		if ((double)x[k] * inv_t > mx)
			mx = (double)x[k] * inv_t;
	for (int k = 0; k < K; k++)
		s += exp((double)x[k] * inv_t - mx);
	*max_out = mx;
	return mx + log(s);
}

enum qcal_status loss_cross_entropy(double *loss, float *dlogits,
				    const float *logits, const int *labels,
				    int B, int K, double eps, double weight,
				    struct qcal_err *err)
{
	double total = 0.0;

	if (B < 1 || K < 1)
		return qcal_err_set(err, QCAL_EINVAL,
				    "cross-entropy: batch %d, classes %d, expected >= 1", B, K);
	if (!(eps >= 0.0 && eps <= 1.0))
		return qcal_err_set(err, QCAL_EINVAL,
				    "cross-entropy: label smoothing %g, expected 0 <= eps <= 1", eps);
	for (int b = 0; b < B; b++)
		if (labels[b] < 0 || labels[b] >= K)
			return qcal_err_set(err, QCAL_EINVAL,
					    "cross-entropy: label %d of image %d, expected 0..%d",
					    labels[b], b, K - 1);
	for (int b = 0; b < B; b++) {
		const float *x = logits + (size_t)b * K;
		double mx, lse = log_sum_exp(x, K, 1.0, &mx), mean_nll = 0.0;
		for (int k = 0; k < K; k++)
			mean_nll += lse - x[k];
		mean_nll /= K;
		total += (1.0 - eps) * (lse - x[labels[b]]) + eps * mean_nll;
		if (!dlogits)
			continue;
		for (int k = 0; k < K; k++) {
			double p = exp(x[k] - lse);
			double target = eps / K + (k == labels[b] ? 1.0 - eps : 0.0);
			dlogits[(size_t)b * K + k] += (float)(weight * (p - target) / B);
		}
	}
	*loss = total / B;
	return QCAL_OK;
}

enum qcal_status loss_distillation(double *loss, float *dlogits,
				   const float *student, const float *teacher,
				   int B, int K, double T, double weight,
				   struct qcal_err *err)
{
	double total = 0.0, inv_t = 1.0 / T;

	if (B < 1 || K < 1)
		return qcal_err_set(err, QCAL_EINVAL,
				    "distillation: batch %d, classes %d, expected >= 1", B, K);
	if (!(T > 0.0 && isfinite(T)))
		return qcal_err_set(err, QCAL_EINVAL,
				    "distillation: temperature %g, expected finite and > 0", T);
	for (int b = 0; b < B; b++) {
		const float *s = student + (size_t)b * K, *t = teacher + (size_t)b * K;
		double ms, mt;
		double lse_s = log_sum_exp(s, K, inv_t, &ms);
		double lse_t = log_sum_exp(t, K, inv_t, &mt);
		double kl = 0.0;
		for (int k = 0; k < K; k++) {
			double log_pt = t[k] * inv_t - lse_t, log_ps = s[k] * inv_t - lse_s;
			double pt = exp(log_pt);
			if (pt > 0.0)
				kl += pt * (log_pt - log_ps);
			if (dlogits)
				dlogits[(size_t)b * K + k] +=
					(float)(weight * T * (exp(log_ps) - pt) / B);
		}
		total += kl;
	}
	*loss = total * T * T / B;
	return QCAL_OK;
}

enum qcal_status loss_logit_mse(double *loss, float *dlogits,
				const float *student, const float *teacher,
				int B, int K, double weight, struct qcal_err *err)
{
	const size_t n = (size_t)B * (size_t)K;
	double total = 0.0;

	if (B < 1 || K < 1)
		return qcal_err_set(err, QCAL_EINVAL,
				    "logit MSE: batch %d, classes %d, expected >= 1", B, K);
	for (size_t i = 0; i < n; i++) {
		double diff = (double)student[i] - (double)teacher[i];
		total += diff * diff;
		if (dlogits)
			dlogits[i] += (float)(weight * 2.0 * diff / (double)n);
	}
	*loss = total / (double)n;
	return QCAL_OK;
}
