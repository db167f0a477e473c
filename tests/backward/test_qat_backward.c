/*
 * The decomposed (QAT) backward at model level:
 *  - with a QP_MODE_QAT context whose points are all float, the step-by-step
 *    LayerNorm / softmax backward equals the fused float backward (micro
 *    fixture, and a random odd-shaped model whose windows need padding and
 *    whose patch merges see odd sizes);
 *  - the float backward of that odd model agrees with central differences
 *    of the loss along random directions (input and parameters);
 *  - fake quant on (J5 dtypes, and all int8): every gradient finite, every
 *    learnable scale gradient non-zero (J5), the fixed 1/128 input's exactly
 *    zero, and the head point's LSQ gradient (int8) equal to the value
 *    recomputed from its saved pre-quant logits;
 *  - a batch smaller than the plan's and another thread count change nothing;
 *  - misuse is rejected with one-line errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/h5.h"
#include "core/rng.h"
#include "model/fakequant_backward.h"
#include "model/loss.h"
#include "model/swin_backward.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"
#include "tests/backward/qat_setup.h"
#include "tests/common/test_util.h"

struct data {
	float *input;   /* (B, Cin, H, W) */
	int *labels;    /* (B) */
	int batch;
};

static void load_micro(struct swin_model *m, struct data *d, int batch)
{
	char path[512];
	struct qcal_err err;
	int64_t *labels = NULL;
	hid_t f;

	test_shared_path(path, sizeof(path), "models/swin-micro-cifar10/weights.h5");
	if (swin_model_load(m, path, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	test_shared_path(path, sizeof(path), "models/swin-micro-cifar10/reference.h5");
	f = qcal_h5_open_read(path, &err);
	assert_true(f >= 0);
	assert_int_equal(qcal_h5_read_float(f, path, "input", &d->input, NULL, &err), QCAL_OK);
	assert_int_equal(qcal_h5_read_int64(f, path, "labels", &labels, NULL, &err), QCAL_OK);
	H5Fclose(f);
	d->batch = batch;
	d->labels = malloc((size_t)batch * sizeof(int));
	assert_non_null(d->labels);
	for (int b = 0; b < batch; b++)
		d->labels[b] = (int)labels[b];
	free(labels);
}

/*
 * A random model with awkward geometry: 18x18 tokens with 4x4 windows
 * (padded to 20, shifted), merged to 9x9 (odd: padded merge, then windows
 * padded to 12) and 5x5 (odd again; 8 padded, still shifted), three heads
 * of 4 channels at stage 0 and MLP ratio 2.
 */
static void make_odd_model(struct swin_model *m, struct data *d, int batch)
{
	struct swin_config cfg;
	struct qcal_err err;
	struct qcal_rng rng;

	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.name, sizeof(cfg.name), "odd-test");
	cfg.img_size = 36;
	cfg.patch_size = 2;
	cfg.in_chans = 3;
	cfg.embed_dim = 12;
	cfg.num_stages = 3;
	cfg.depths[0] = 2;
	cfg.depths[1] = 2;
	cfg.depths[2] = 2;
	cfg.num_heads[0] = 3;
	cfg.num_heads[1] = 3;
	cfg.num_heads[2] = 6;
	cfg.window_size = 4;
	cfg.mlp_ratio = 2.0;
	cfg.num_classes = 5;
	for (int c = 0; c < 3; c++) {
		cfg.mean[c] = 0.5f;
		cfg.std[c] = 0.25f;
	}
	if (swin_config_validate(&cfg, &err) != QCAL_OK ||
	    swin_model_init(m, &cfg, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	qcal_rng_seed(&rng, 11);
	swin_model_randomize(m, &rng);
	/* randomize() leaves biases 0 and norms 1: perturb them so their
	 * gradients are exercised, and make the relative position bias large
	 * enough to matter */
	for (int i = 0; i < m->table.count; i++) {
		const struct swin_param_spec *s = &m->table.specs[i];
		float amp = s->kind == SWIN_PARAM_LINEAR_WEIGHT || s->kind == SWIN_PARAM_CONV_WEIGHT ?
			    0.0f : 0.2f;
		for (size_t j = 0; j < s->numel; j++)
			m->params[s->offset + j] += amp * qcal_rng_normal(&rng);
	}
	size_t n = (size_t)batch * 3 * 36 * 36;
	d->input = malloc(n * sizeof(float));
	d->labels = malloc((size_t)batch * sizeof(int));
	assert_true(d->input && d->labels);
	for (size_t i = 0; i < n; i++)
		d->input[i] = qcal_rng_normal(&rng);
	for (int b = 0; b < batch; b++)
		d->labels[b] = (int)qcal_rng_below(&rng, 5);
	d->batch = batch;
	assert_true(swin_padded_res(&cfg, 0) == 20 && swin_stage_res(&cfg, 1) == 9 &&
		    swin_stage_res(&cfg, 2) == 5 && swin_stage_shifts(&cfg, 2));
}

static void free_data(struct data *d)
{
	free(d->input);
	free(d->labels);
}

/*
 * One step: forward (ctx NULL: float plan; else decomposed), CE loss with
 * smoothing 0.1, backward into grads/dinput (zeroed here).  Returns the loss.
 */
static double step(struct swin_model *m, const struct data *d, struct swin_plan *plan,
		   struct qp_ctx *ctx, const struct swin_weights *w, float *grads,
		   float *dinput)
{
	const struct swin_config *c = &m->cfg;
	struct swin_backward_plan bp;
	struct swin_weights dw;
	struct qcal_err err;
	float *dlogits = calloc((size_t)d->batch * c->num_classes, sizeof(float));
	size_t in_numel = (size_t)d->batch * c->in_chans * c->img_size * c->img_size;
	double loss;

	assert_non_null(dlogits);
	memset(grads, 0, m->table.numel * sizeof(float));
	memset(dinput, 0, in_numel * sizeof(float));
	assert_int_equal(swin_backward_plan_init(&bp, plan, &err), QCAL_OK);
	assert_int_equal(swin_weights_bind(&dw, c, &m->table, grads), QCAL_OK);
	if (swin_forward(plan, m, w, ctx, d->input, d->batch, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	assert_int_equal(loss_cross_entropy(&loss, dlogits, plan->logits, d->labels, d->batch,
					    c->num_classes, 0.1, 1.0, &err), QCAL_OK);
	if (swin_backward(&bp, plan, m, w, ctx, dlogits, d->batch, &dw, dinput, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	swin_weights_unbind(&dw);
	swin_backward_plan_free(&bp);
	free(dlogits);
	return loss;
}

/* Every parameter tensor and the input gradient of b against a (reference);
 * returns the number over rel_tol, printing the worst. */
static int compare_grads(const struct swin_model *m, const float *ga, const float *gb,
			 const float *da, const float *db, size_t in_numel,
			 double rel_tol, const char *label)
{
	int failures = 0, worst_i = -1;
	double worst = 0.0;

	for (int i = 0; i < m->table.count; i++) {
		const struct swin_param_spec *s = &m->table.specs[i];
		struct test_diff d = test_compare(gb + s->offset, ga + s->offset, s->numel);
		double r = d.max_abs_ref > 0 ? d.max_abs_diff / d.max_abs_ref : d.max_abs_diff;
		if (!(r <= rel_tol))
			failures++;
		if (!(r <= worst)) {
			worst = r;
			worst_i = i;
		}
	}
	printf("  %s: %d parameter tensors, worst %s ratio %.2e\n", label, m->table.count,
	       worst_i >= 0 ? m->table.specs[worst_i].name : "-", worst);
	failures += test_report_diff("input", db, da, in_numel, rel_tol);
	return failures;
}

/* Fused float backward vs decomposed QAT backward with every point float. */
static void check_decomposed_equals_fused(struct swin_model *m, const struct data *d)
{
	const struct swin_config *c = &m->cfg;
	size_t in_numel = (size_t)d->batch * c->in_chans * c->img_size * c->img_size;
	size_t P = m->table.numel;
	float *g1 = malloc(P * sizeof(float)), *g2 = malloc(P * sizeof(float));
	float *d1 = malloc(in_numel * sizeof(float)), *d2 = malloc(in_numel * sizeof(float));
	struct swin_plan fused, dec;
	struct qat_setup q;
	struct qcal_err err;

	assert_true(g1 && g2 && d1 && d2);
	assert_int_equal(swin_plan_init(&fused, c, d->batch, SWIN_PLAN_TRAIN, 0, NULL, &err), QCAL_OK);
	assert_int_equal(swin_plan_init(&dec, c, d->batch, SWIN_PLAN_TRAIN | SWIN_PLAN_DECOMPOSED,
					0, NULL, &err), QCAL_OK);
	assert_int_equal(qat_setup_init(&q, m, &dec, d->input, d->batch, QAT_ALL_FLOAT, &err),
			 QCAL_OK);
	double l1 = step(m, d, &fused, NULL, NULL, g1, d1);
	double l2 = step(m, d, &dec, &q.ctx, NULL, g2, d2);
	printf("%s: loss fused %.9f decomposed %.9f\n", c->name, l1, l2);
	assert_true(fabs(l1 - l2) <= 1e-6 * fabs(l1));
	for (int i = 0; i < q.table.count; i++)
		assert_true(q.st.saved[i] == NULL && q.st.dscale[i] == 0.0f);
	assert_int_equal(compare_grads(m, g1, g2, d1, d2, in_numel, 1e-5,
				       "decomposed (all float) vs fused"), 0);
	qat_setup_free(&q);
	swin_plan_free(&dec);
	swin_plan_free(&fused);
	free(g1);
	free(g2);
	free(d1);
	free(d2);
}

static void test_decomposed_float_micro(void **state)
{
	struct swin_model m;
	struct data d;
	(void)state;
	load_micro(&m, &d, 4);
	check_decomposed_equals_fused(&m, &d);
	free_data(&d);
	swin_model_free(&m);
}

static void test_decomposed_float_odd(void **state)
{
	struct swin_model m;
	struct data d;
	(void)state;
	make_odd_model(&m, &d, 3);
	check_decomposed_equals_fused(&m, &d);
	free_data(&d);
	swin_model_free(&m);
}

/* Loss of the float forward for params / input as they stand. */
static double loss_at(struct swin_model *m, const struct data *d, struct swin_plan *plan)
{
	struct qcal_err err;
	double loss;

	assert_int_equal(swin_forward(plan, m, NULL, NULL, d->input, d->batch, &err), QCAL_OK);
	assert_int_equal(loss_cross_entropy(&loss, NULL, plan->logits, d->labels, d->batch,
					    m->cfg.num_classes, 0.1, 1.0, &err), QCAL_OK);
	return loss;
}

/* Central difference of the loss along u (n floats of x, base values x0). */
static double central_diff(struct swin_model *m, const struct data *d,
			   struct swin_plan *plan, float *x, const float *x0,
			   const float *u, size_t n, double eps)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(x0[i] + eps * u[i]);
	double lp = loss_at(m, d, plan);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(x0[i] - eps * u[i]);
	double lm = loss_at(m, d, plan);
	memcpy(x, x0, n * sizeof(float));
	return (lp - lm) / (2 * eps);
}

/*
 * Directional derivatives of the whole float model: for random directions u
 * over all parameters (and over the input), the central difference of the
 * loss, Richardson-extrapolated from steps e and e/2 to cancel its O(e^2)
 * error, must equal <grad, u> within 2e-4 relative (plus 1e-6 absolute):
 * float rounding in the forward is what remains.
 */
static void test_directional_fd_odd(void **state)
{
	struct swin_model m;
	struct data d;
	struct swin_plan plan;
	struct qcal_err err;
	struct qcal_rng rng;
	(void)state;
	make_odd_model(&m, &d, 2);
	const struct swin_config *c = &m.cfg;
	size_t P = m.table.numel, in_numel = (size_t)d.batch * 3 * 36 * 36;
	float *g = malloc(P * sizeof(float)), *gi = malloc(in_numel * sizeof(float));
	float *base = malloc(P * sizeof(float)), *xin = malloc(in_numel * sizeof(float));
	float *u = malloc((P > in_numel ? P : in_numel) * sizeof(float));
	assert_true(g && gi && base && xin && u);
	assert_int_equal(swin_plan_init(&plan, c, d.batch, SWIN_PLAN_TRAIN, 1, NULL, &err), QCAL_OK);
	step(&m, &d, &plan, NULL, NULL, g, gi);
	memcpy(base, m.params, P * sizeof(float));
	memcpy(xin, d.input, in_numel * sizeof(float));
	qcal_rng_seed(&rng, 5);
	int failures = 0;
	for (int trial = 0; trial < 6; trial++) {
		int on_input = trial >= 4;
		size_t n = on_input ? in_numel : P;
		float *x = on_input ? d.input : m.params;
		const float *x0 = on_input ? xin : base, *grad = on_input ? gi : g;
		double dot = 0.0, eps = on_input ? 1e-2 : 1e-3;
		for (size_t i = 0; i < n; i++) {
			u[i] = qcal_rng_normal(&rng);
			dot += (double)grad[i] * u[i];
		}
		double f1 = central_diff(&m, &d, &plan, x, x0, u, n, eps);
		double f2 = central_diff(&m, &d, &plan, x, x0, u, n, eps / 2);
		double fd = (4 * f2 - f1) / 3;
		int bad = !(fabs(fd - dot) <= 2e-4 * fabs(dot) + 1e-6);
		printf("  direction %d (%s): <grad,u> = %+.6e  extrapolated difference = %+.6e"
		       "  (steps %g: %+.6e, %g: %+.6e)  %s\n", trial,
		       on_input ? "input" : "parameters", dot, fd, eps, f1, eps / 2, f2,
		       bad ? "FAIL" : "OK");
		failures += bad;
	}
	assert_int_equal(failures, 0);
	swin_plan_free(&plan);
	free(g);
	free(gi);
	free(base);
	free(xin);
	free(u);
	free_data(&d);
	swin_model_free(&m);
}

/*
 * QAT step with fake quant on: finite gradients everywhere, the fixed input's
 * scale gradient exactly zero, and every learnable point's non-zero (a
 * calibration that clamped whole tensors or put a point on its producer's
 * grid would legitimately zero some; qat_setup.h avoids both).
 */
static void check_qat(struct swin_model *m, const struct data *d, enum qat_recipe recipe)
{
	const struct swin_config *c = &m->cfg;
	size_t in_numel = (size_t)d->batch * c->in_chans * c->img_size * c->img_size;
	size_t P = m->table.numel;
	float *g = malloc(P * sizeof(float)), *gi = malloc(in_numel * sizeof(float));
	struct swin_plan dec;
	struct qat_setup q;
	struct qcal_err err;

	assert_true(g && gi);
	assert_int_equal(swin_plan_init(&dec, c, d->batch, SWIN_PLAN_TRAIN | SWIN_PLAN_DECOMPOSED,
					0, NULL, &err), QCAL_OK);
	assert_int_equal(qat_setup_init(&q, m, &dec, d->input, d->batch, recipe, &err), QCAL_OK);
	qat_setup_fq_weights(&q, m);
	double loss = step(m, d, &dec, &q.ctx, &q.wqv, g, gi);
	qat_setup_weight_backward(&q, m, g);
	printf("%s %s QAT: loss %.6f\n", c->name, recipe == QAT_J5 ? "J5" : "int8", loss);
	assert_true(isfinite(loss));
	size_t nonfinite = 0;
	for (size_t i = 0; i < P; i++)
		nonfinite += !isfinite(g[i]);
	for (size_t i = 0; i < in_numel; i++)
		nonfinite += !isfinite(gi[i]);
	assert_int_equal(nonfinite, 0);
	/* the input point (fixed 1/128, int8): pixels outside [-1, 127/128]
	 * after rounding get no gradient, the others do */
	{
		const float *pre = q.st.saved[q.table.input];
		size_t clamped = 0, passed = 0;
		for (size_t i = 0; i < in_numel; i++) {
			float v = nearbyintf(pre[i] * 128.0f);
			if (v < -128.0f || v > 127.0f) {
				clamped++;
				assert_true(gi[i] == 0.0f);
			} else {
				passed += gi[i] != 0.0f;
			}
		}
		printf("  input: %zu of %zu pixels clamped (zero gradient), %zu others with a "
		       "gradient\n", clamped, in_numel, passed);
		assert_true(clamped > 0 && passed > 0);
	}
	int learnable = 0, zero_learnable = 0, quantized = 0;
	for (int i = 0; i < q.table.count; i++) {
		const struct qp_point *pt = &q.table.points[i];
		if (pt->role == QP_ROLE_WEIGHT)
			continue;
		quantized += q.qparams[i].dtype != QCAL_DTYPE_FLOAT;
		assert_true(isfinite(q.st.dscale[i]));
		if (q.st.learnable[i]) {
			learnable++;
			if (q.st.dscale[i] == 0.0f) {
				zero_learnable++;
				printf("  learnable point %s has a zero scale gradient\n", pt->name);
			}
		} else {
			assert_true(q.st.dscale[i] == 0.0f);
		}
	}
	assert_false(q.st.learnable[q.table.input]);
	assert_true(q.qparams[q.table.input].scale == 1.0f / 128.0f);
	assert_true(q.st.dscale[q.table.input] == 0.0f);
	printf("  %d quantized activation points, %d learnable, %d with a zero scale "
	       "gradient; input (fixed 1/128) dscale = %g\n", quantized, learnable,
	       zero_learnable, q.st.dscale[q.table.input]);
	assert_int_equal(zero_learnable, 0);
	/* weight scales: every channel's LSQ gradient finite, nearly all non-zero */
	size_t wch = 0, wzero = 0;
	for (int i = 0; i < q.table.count; i++)
		if (q.table.points[i].role == QP_ROLE_WEIGHT)
			wch += (size_t)q.table.points[i].channels;
	for (size_t i = 0; i < wch; i++) {
		assert_true(isfinite(q.dwscales[i]));
		wzero += q.dwscales[i] == 0.0f;
	}
	printf("  %zu weight channels, %zu with a zero scale gradient\n", wch, wzero);
	assert_true(wzero * 100 <= wch);
	/* the head point's LSQ gradient, recomputed from its saved logits */
	if (q.st.learnable[q.table.head]) {
		int id = q.table.head;
		const struct qp_qparams *qp = &q.qparams[id];
		size_t n = (size_t)d->batch * c->num_classes;
		float *dl = calloc(n, sizeof(float)), *scratch = malloc(n * sizeof(float));
		double l2, want;
		struct fq_bwd p;
		assert_true(dl && scratch);
		/* plan.logits are the quantized logits the loss saw */
		assert_int_equal(loss_cross_entropy(&l2, dl, dec.logits, d->labels, d->batch,
						    c->num_classes, 0.1, 1.0, &err), QCAL_OK);
		fq_bwd_init(&p, q.st.saved[id], qp->scale, qp->zero_point, qp->qmin, qp->qmax, true);
		want = fq_bwd_tensor(scratch, dl, &p, n, NULL, 1) *
		       swin_point_grad_factor(&q.table.points[id], qp);
		printf("  head.out dscale = %.9e, recomputed %.9e\n", q.st.dscale[id], want);
		assert_true(fabs(q.st.dscale[id] - want) <= 1e-6 * fabs(want));
		assert_true(want != 0.0);
		free(dl);
		free(scratch);
	}
	qat_setup_free(&q);
	swin_plan_free(&dec);
	free(g);
	free(gi);
}

static void test_qat_micro(void **state)
{
	struct swin_model m;
	struct data d;
	(void)state;
	load_micro(&m, &d, 4);
	check_qat(&m, &d, QAT_J5);
	check_qat(&m, &d, QAT_ALL_INT8);
	free_data(&d);
	swin_model_free(&m);
}

static void test_qat_odd(void **state)
{
	struct swin_model m;
	struct data d;
	(void)state;
	make_odd_model(&m, &d, 3);
	check_qat(&m, &d, QAT_J5);
	free_data(&d);
	swin_model_free(&m);
}

/*
 * A batch smaller than the plan's and a different thread count give the
 * same gradients (fused float path and J5 QAT path): the plan's spare rows
 * and the team size must not leak into the result.
 */
static void test_batch_and_threads(void **state)
{
	struct swin_model m;
	struct data d;
	struct qcal_err err;
	(void)state;
	make_odd_model(&m, &d, 2);
	const struct swin_config *c = &m.cfg;
	size_t P = m.table.numel, in_numel = (size_t)2 * 3 * 36 * 36;
	float *g[2], *gi[2];
	for (int qat = 0; qat < 2; qat++) {
		for (int r = 0; r < 2; r++) {
			struct swin_plan plan;
			struct qat_setup q;
			/* run 0: plan for 2 images, 1 thread; run 1: plan for 5, 2 threads */
			unsigned flags = SWIN_PLAN_TRAIN | (qat ? SWIN_PLAN_DECOMPOSED : 0);
			g[r] = malloc(P * sizeof(float));
			gi[r] = malloc(in_numel * sizeof(float));
			assert_true(g[r] && gi[r]);
			assert_int_equal(swin_plan_init(&plan, c, r ? 5 : 2, flags, r ? 2 : 1, NULL,
							&err), QCAL_OK);
			if (qat) {
				assert_int_equal(qat_setup_init(&q, &m, &plan, d.input, 2, QAT_J5, &err),
						 QCAL_OK);
				qat_setup_fq_weights(&q, &m);
			}
			step(&m, &d, &plan, qat ? &q.ctx : NULL, qat ? &q.wqv : NULL, g[r], gi[r]);
			if (qat)
				qat_setup_free(&q);
			swin_plan_free(&plan);
		}
		printf("  %s: plan batch 2 / 1 thread vs plan batch 5 / 2 threads\n",
		       qat ? "J5 QAT" : "float");
		assert_int_equal(compare_grads(&m, g[0], g[1], gi[0], gi[1], in_numel, 1e-6,
					       "same gradients"), 0);
		for (int r = 0; r < 2; r++) {
			free(g[r]);
			free(gi[r]);
		}
	}
	free_data(&d);
	swin_model_free(&m);
}

static void test_misuse(void **state)
{
	struct swin_model m;
	struct data d;
	struct swin_plan fused, dec, infer;
	struct swin_backward_plan bp, bpd;
	struct swin_weights dw;
	struct qat_setup q;
	struct qcal_err err;
	(void)state;
	make_odd_model(&m, &d, 2);
	const struct swin_config *c = &m.cfg;
	float *grads = calloc(m.table.numel, sizeof(float));
	float *dlogits = calloc((size_t)2 * c->num_classes, sizeof(float));
	assert_true(grads && dlogits);
	assert_int_equal(swin_weights_bind(&dw, c, &m.table, grads), QCAL_OK);
	assert_int_equal(swin_plan_init(&infer, c, 2, 0, 1, NULL, &err), QCAL_OK);
	assert_int_equal(swin_backward_plan_init(&bp, &infer, &err), QCAL_EINVAL);
	printf("  %s\n", err.msg);
	assert_non_null(strstr(err.msg, "SWIN_PLAN_TRAIN"));
	assert_int_equal(swin_plan_init(&fused, c, 2, SWIN_PLAN_TRAIN, 1, NULL, &err), QCAL_OK);
	assert_int_equal(swin_plan_init(&dec, c, 2, SWIN_PLAN_TRAIN | SWIN_PLAN_DECOMPOSED, 1,
					NULL, &err), QCAL_OK);
	assert_int_equal(swin_backward_plan_init(&bp, &fused, &err), QCAL_OK);
	assert_int_equal(swin_backward_plan_init(&bpd, &dec, &err), QCAL_OK);
	assert_int_equal(swin_forward(&fused, &m, NULL, NULL, d.input, 2, &err), QCAL_OK);
	assert_int_equal(swin_backward(&bp, &fused, &m, NULL, NULL, dlogits, 3, &dw, NULL, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	/* a workspace made for another plan (other thread count) */
	{
		struct swin_plan other;
		assert_int_equal(swin_plan_init(&other, c, 2, SWIN_PLAN_TRAIN, 2, NULL, &err), QCAL_OK);
		assert_int_equal(swin_forward(&other, &m, NULL, NULL, d.input, 2, &err), QCAL_OK);
		assert_int_equal(swin_backward(&bp, &other, &m, NULL, NULL, dlogits, 2, &dw, NULL,
					       &err), QCAL_EINVAL);
		printf("  %s\n", err.msg);
		assert_non_null(strstr(err.msg, "another plan"));
		swin_plan_free(&other);
	}
	assert_int_equal(swin_backward(&bpd, &dec, &m, NULL, NULL, dlogits, 2, &dw, NULL, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	assert_int_equal(qat_setup_init(&q, &m, &dec, d.input, 2, QAT_ALL_INT8, &err), QCAL_OK);
	assert_int_equal(swin_backward(&bp, &fused, &m, NULL, &q.ctx, dlogits, 2, &dw, NULL, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	/* fake quant without the saved tensors */
	q.ctx.mode = QP_MODE_FAKEQUANT;
	assert_int_equal(swin_forward(&dec, &m, NULL, &q.ctx, d.input, 2, &err), QCAL_OK);
	assert_int_equal(swin_backward(&bpd, &dec, &m, NULL, &q.ctx, dlogits, 2, &dw, NULL, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	assert_non_null(strstr(err.msg, "input"));
	q.ctx.mode = QP_MODE_QAT;
	q.ctx.saved = NULL;
	assert_int_equal(swin_backward(&bpd, &dec, &m, NULL, &q.ctx, dlogits, 2, &dw, NULL, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	/* nothing was accumulated by the rejected calls */
	for (size_t i = 0; i < m.table.numel; i++)
		assert_true(grads[i] == 0.0f);
	qat_setup_free(&q);
	swin_backward_plan_free(&bp);
	swin_backward_plan_free(&bpd);
	swin_backward_plan_free(NULL);
	swin_plan_free(&infer);
	swin_plan_free(&fused);
	swin_plan_free(&dec);
	swin_weights_unbind(&dw);
	free(grads);
	free(dlogits);
	free_data(&d);
	swin_model_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decomposed_float_micro),
		cmocka_unit_test(test_decomposed_float_odd),
		cmocka_unit_test(test_directional_fd_odd),
		cmocka_unit_test(test_qat_micro),
		cmocka_unit_test(test_qat_odd),
		cmocka_unit_test(test_batch_and_threads),
		cmocka_unit_test(test_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
