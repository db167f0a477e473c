/*
 * Training losses on logits, each returning the loss and its gradient with
 * respect to the logits, so the backward pass can start from dlogits.
 *
 * Both ACCUMULATE (+=) weight * d loss / d logits into dlogits, so a QAT
 * loop can combine them (e.g. CE with weight 1 - a plus distillation with
 * weight a) in one buffer it zeroed.  The returned loss is unweighted.
 * Arithmetic is in double per row (log-sum-exp with the row max subtracted),
 * so large logits neither overflow nor lose the small probabilities.
 */
#ifndef QCAL_MODEL_LOSS_H
#define QCAL_MODEL_LOSS_H

#include "core/status.h"

/*
 * Mean cross-entropy over the batch with optional label smoothing eps
 * (torch.nn.functional.cross_entropy(logits, labels, label_smoothing=eps)):
 *   loss = mean_b [ (1 - eps) * -log p_b[y_b] + eps * mean_k -log p_b[k] ]
 *   dlogits (B, K) += weight * (p - (1 - eps) onehot(y) - eps / K) / B.
 * logits (B, K); labels (B) in [0, K).  *loss receives the loss.  Fails
 * (EINVAL, nothing written) on a label out of range or eps outside [0, 1].
 */
enum qcal_status loss_cross_entropy(double *loss, float *dlogits,
				    const float *logits, const int *labels,
				    int B, int K, double label_smoothing,
				    double weight, struct qcal_err *err);

/*
 * Distillation: T^2 * mean_b KL(softmax(teacher_b / T) || softmax(student_b / T))
 * (Hinton et al. 2015; torch: kl_div(log_softmax(s/T), softmax(t/T),
 * reduction="batchmean") * T^2):
 *   dlogits (B, K) += weight * T * (softmax(s/T) - softmax(t/T)) / B.
 * student, teacher (B, K).  Fails (EINVAL) unless T > 0 and finite.
 */
enum qcal_status loss_distillation(double *loss, float *dlogits,
				   const float *student, const float *teacher,
				   int B, int K, double temperature, double weight,
				   struct qcal_err *err);

/*
 * Logit matching: mean_b mean_k (student - teacher)^2
 * (torch.nn.functional.mse_loss(student, teacher)):
 *   dlogits (B, K) += weight * 2 (student - teacher) / (B K).
 * Unlike the KL it weighs every logit, not just the probable ones, so it
 * drives the logit SQNR that quantization error is measured by.
 */
enum qcal_status loss_logit_mse(double *loss, float *dlogits,
				const float *student, const float *teacher,
				int B, int K, double weight, struct qcal_err *err);

#endif
