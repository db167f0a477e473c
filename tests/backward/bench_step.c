/*
 * bench_step: one training step (forward + loss + backward + SGD update)
 * timed per image, with peak RSS.  Not a test; built beside the backward
 * tests and run by hand, e.g. beside PyTorch's anchor:
 *
 *   bench_step --model ../shared/models/swin-micro-cifar10/weights.h5 --batch 64 --mode qat
 *   /usr/bin/python3 ../shared/bench/torch_anchor.py --model ... --batch 64 --mode qat
 *   bench_step --arch swin-t --batch 8 --mode qat
 *
 * Modes:
 *   float  fused float forward and backward (SWIN_PLAN_TRAIN)
 *   qat    decomposed plan, fake quant at every activation point with the
 *          J5 dtypes (int8; LayerNorm / softmax intermediates int16; logits
 *          int32), input fixed 1/128, the other scales learnable (LSQ)
 *          and per-channel int8 weights fake-quantized each step, their
 *          gradients mapped back by the STE with LSQ weight-scale gradients
 * Prints one line:
 *   step <model> <mode> batch=B threads=T ms_per_image=<median> fwd_ms_per_image=..
 *        bwd_ms_per_image=.. peak_rss_mb=.. activations_mb=.. (forward plan)
 *        gradients_mb=.. (backward plan) saved_mb=.. (QAT pre-quant copies)
 *        train_gflop_per_image=.. (3x the forward's matmul FLOPs: forward,
 *        input gradient, weight gradient) sgemm_gflops=.. (the best rate of
 *        a 1536^3 sgemm through the same GEMM back end and threads, measured
 *        in the same run) matmul_floor_ms_per_image=.. (the first divided by
 *        the second: no step can beat it without doing fewer FLOPs)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/rng.h"
#include "model/gemm.h"
#include "model/loss.h"
#include "model/swin_backward.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"
#include "tests/backward/qat_setup.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Best GFLOP/s of a square sgemm through the plan's GEMM back end: the
 * machine's matmul ceiling for the roofline printed beside the step. */
static double sgemm_peak_gflops(const struct swin_kernels *kk, int threads)
{
	const int n = 1536;
	size_t nn = (size_t)n * n;
	float *a = malloc(nn * sizeof(float)), *b = malloc(nn * sizeof(float));
	float *c = malloc(nn * sizeof(float));
	double best = 0;

	if (!a || !b || !c)
		goto out;
	for (size_t i = 0; i < nn; i++) {
		a[i] = (float)(i % 7) * 0.25f;
		b[i] = (float)(i % 5) * 0.5f;
	}
	for (int r = 0; r < 6; r++) {
		double t0 = qcal_now();
		kk->gemm(false, true, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, threads);
		double g = 2.0 * n * n * n / (qcal_now() - t0) / 1e9;
		if (r > 0 && g > best)
			best = g;
	}
out:
	free(a);
	free(b);
	free(c);
	return best;
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_step [--model W.h5 | --arch swin-t] [--batch B] "
		"[--mode float|qat] [--iters N] [--threads T]\n");
}

int main(int argc, char **argv)
{
	const char *model_path = NULL, *mode = "qat";
	int B = 8, iters = 5, threads = 0;
	struct swin_model model;
	struct qcal_err err;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--model") && i + 1 < argc)
			model_path = argv[++i];
		else if (!strcmp(argv[i], "--arch") && i + 1 < argc)
			model_path = strcmp(argv[++i], "swin-t") ? argv[i] : NULL;
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			B = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = argv[++i];
		else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
			iters = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else {
			usage();
			return 2;
		}
	}
	int qat = !strcmp(mode, "qat");
	if ((!qat && strcmp(mode, "float")) || B < 1 || iters < 1) {
		usage();
		return 2;
	}
	if (model_path) {
		if (swin_model_load(&model, model_path, &err) != QCAL_OK) {
			fprintf(stderr, "bench_step: %s\n", err.msg);
			return 1;
		}
	} else {
		struct swin_config cfg;
		struct qcal_rng rng;
		swin_config_swin_t(&cfg);
		if (swin_model_init(&model, &cfg, &err) != QCAL_OK) {
			fprintf(stderr, "bench_step: %s\n", err.msg);
			return 1;
		}
		qcal_rng_seed(&rng, 1);
		swin_model_randomize(&model, &rng);
	}
	const struct swin_config *c = &model.cfg;
	size_t in_numel = (size_t)B * c->in_chans * c->img_size * c->img_size;
	size_t P = model.table.numel;
	float *input = malloc(in_numel * sizeof(float));
	float *grads = malloc(P * sizeof(float)), *mom = calloc(P, sizeof(float));
	float *dlogits = malloc((size_t)B * c->num_classes * sizeof(float));
	int *labels = malloc((size_t)B * sizeof(int));
	struct qcal_rng rng;
	qcal_rng_seed(&rng, 7);
	for (size_t i = 0; i < in_numel; i++)
		input[i] = qcal_rng_normal(&rng);
	for (int b = 0; b < B; b++)
		labels[b] = (int)qcal_rng_below(&rng, (uint64_t)c->num_classes);

	struct swin_plan plan;
	struct swin_backward_plan bp;
	struct swin_weights dw;
	struct qat_setup q;
	unsigned flags = SWIN_PLAN_TRAIN | (qat ? SWIN_PLAN_DECOMPOSED : 0);
	if (swin_plan_init(&plan, c, B, flags, threads, NULL, &err) != QCAL_OK ||
	    swin_backward_plan_init(&bp, &plan, &err) != QCAL_OK ||
	    swin_weights_bind(&dw, c, &model.table, grads) != QCAL_OK ||
	    (qat && qat_setup_init(&q, &model, &plan, input, B, QAT_J5, &err) != QCAL_OK)) {
		fprintf(stderr, "bench_step: %s\n", err.msg);
		return 1;
	}
	double *t_step = calloc((size_t)iters, sizeof(double));
	double *t_fwd = calloc((size_t)iters, sizeof(double));
	double *t_bwd = calloc((size_t)iters, sizeof(double));
	for (int it = -1; it < iters; it++) {
		double t0 = qcal_now(), loss;
		const struct swin_weights *w = &model.w;
		if (qat) {
			qat_setup_fq_weights(&q, &model);
			swin_qat_zero_dscale(&q.st);
			w = &q.wqv;
		}
		if (swin_forward(&plan, &model, w, qat ? &q.ctx : NULL, input, B, &err) != QCAL_OK)
			goto fail;
		memset(dlogits, 0, (size_t)B * c->num_classes * sizeof(float));
		if (loss_cross_entropy(&loss, dlogits, plan.logits, labels, B, c->num_classes,
				       0.1, 1.0, &err) != QCAL_OK)
			goto fail;
		double t1 = qcal_now();
		memset(grads, 0, P * sizeof(float));
		if (swin_backward(&bp, &plan, &model, w, qat ? &q.ctx : NULL, dlogits, B, &dw,
				  NULL, &err) != QCAL_OK)
			goto fail;
		if (qat)
			qat_setup_weight_backward(&q, &model, grads);
		double t2 = qcal_now();
		/* SGD with momentum, as the PyTorch anchor steps */
		for (size_t i = 0; i < P; i++) {
			mom[i] = 0.9f * mom[i] + grads[i];
			model.params[i] -= 1e-4f * mom[i];
		}
		double t3 = qcal_now();
		if (it >= 0) {
			t_step[it] = (t3 - t0) * 1e3 / B;
			t_fwd[it] = (t1 - t0) * 1e3 / B;
			t_bwd[it] = (t2 - t1) * 1e3 / B;
		}
	}
	double train_gflop = 3.0 * swin_forward_flops(c) / 1e9;
	double peak = sgemm_peak_gflops(plan.kernels, plan.threads);
	printf("step %s %s batch=%d threads=%d ms_per_image=%.3f fwd_ms_per_image=%.3f "
	       "bwd_ms_per_image=%.3f peak_rss_mb=%.0f activations_mb=%.0f gradients_mb=%.0f "
	       "saved_mb=%.0f train_gflop_per_image=%.2f sgemm_gflops=%.0f "
	       "matmul_floor_ms_per_image=%.1f\n",
	       c->name[0] ? c->name : "swin-t", mode, B, plan.threads,
	       median(t_step, iters), median(t_fwd, iters), median(t_bwd, iters),
	       (double)qcal_peak_rss_bytes() / (1 << 20),
	       (double)swin_plan_bytes(&plan) / (1 << 20),
	       (double)swin_backward_plan_bytes(&bp) / (1 << 20),
	       qat ? (double)q.st.arena_floats * sizeof(float) / (1 << 20) : 0.0,
	       train_gflop, peak, peak > 0 ? train_gflop / peak * 1e3 : 0.0);
	return 0;
fail:
	fprintf(stderr, "bench_step: %s\n", err.msg);
	return 1;
}
