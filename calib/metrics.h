/*
 * Accuracy and fidelity of a quantized model against its float twin, as
 * running sums so batches can be added as they come (and sums merged across
 * shards): top-1 / top-5 against labels, argmax agreement with float, logit
 * SQNR (10 log10 of signal power over error power, summed over the whole
 * set), and the mean KL divergence softmax(float) || softmax(quant).
 */
#ifndef QCAL_CALIB_METRICS_H
#define QCAL_CALIB_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics {
	int64_t images;
	int64_t labelled;          /* images with a label >= 0 */
	int64_t top1, top5;        /* correct, of labelled */
	int64_t float_top1, float_top5;
	int64_t agree;             /* argmax(quant) == argmax(float) */
	double signal, noise;      /* sum float^2, sum (quant - float)^2 */
	double kl_sum;             /* sum over images of KL(float || quant) */
	int has_float;             /* reference logits were given */
};

void metrics_init(struct metrics *m);
/*
 * Add B images: logits (B, K) of the evaluated model, ref (B, K) of the
 * float model or NULL, labels (B) with -1 for unlabelled.
 */
void metrics_add(struct metrics *m, const float *logits, const float *ref,
		 const int *labels, int B, int K);
void metrics_merge(struct metrics *dst, const struct metrics *src);

double metrics_top1(const struct metrics *m);       /* fraction, NAN if no labels */
double metrics_top5(const struct metrics *m);
double metrics_float_top1(const struct metrics *m);
double metrics_agreement(const struct metrics *m);  /* fraction, NAN without ref */
double metrics_sqnr_db(const struct metrics *m);    /* +inf if identical */
double metrics_mean_kl(const struct metrics *m);

/* Index of the largest logit (first on ties, as torch.argmax). */
int metrics_argmax(const float *logits, int K);
/* 1 if label is among the k largest logits (ties broken by lower index). */
int metrics_in_topk(const float *logits, int K, int label, int k);

#endif
