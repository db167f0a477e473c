/*
 * The fused decomposed kernels against their naive twins with fake quant
 * between the steps.  A forward runs the LayerNorm (resp. softmax attention)
 * steps as swin_forward's decomposed path does, fake-quantizing each point
 * in QAT fashion (pre-quant copy kept) with scales 0.9 * max|x| / qmax (so
 * some elements clamp), int8, int16 or float per point.  Then
 *   fused:  op_layernorm_steps_backward / op_attention_steps_backward /
 *           op_gelu_steps_backward
 *   naive:  the step-by-step backward functions of swin_ops_backward.h
 *           chained with fq_bwd_tensor at every quantized point
 * must give the same input and parameter gradients (max|diff| <= 1e-5 *
 * max|ref|: only summation order differs) and the same LSQ sums per point
 * (relative 1e-4: each term (q s - x) / s is a float difference of nearly
 * equal numbers, ~1e-3 relative for int16 points, and the two sum them in
 * different orders), on odd widths and with a shifted-window mask.
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

#include "core/dtype.h"
#include "core/rng.h"
#include "model/fakequant_backward.h"
#include "model/swin_ops.h"
#include "model/swin_ops_backward.h"
#include "tests/common/test_util.h"

#define TOL 1e-5

static struct qcal_rng rng;

static float *zeros(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof(float));
	assert_non_null(p);
	return p;
}

static float *random_buf(size_t n, float lo, float hi)
{
	float *p = zeros(n);
	for (size_t i = 0; i < n; i++)
		p[i] = lo + (hi - lo) * qcal_rng_uniform(&rng);
	return p;
}

/* A quantized point in QAT mode: scale 0.9 max|x| / qmax, pre-quant copy
 * kept in pre (owned, n floats), x fake-quantized in place.  dtype FLOAT
 * leaves x alone and the point as the identity (fq->pre NULL). */
static void qat_point(struct fq_bwd *fq, float **pre, float *x, size_t n,
		      enum qcal_dtype dtype)
{
	int64_t qmin, qmax;
	float mx = 0.0f;

	memset(fq, 0, sizeof(*fq));
	*pre = NULL;
	if (dtype == QCAL_DTYPE_FLOAT)
		return;
	qcal_dtype_range(dtype, &qmin, &qmax);
	for (size_t i = 0; i < n; i++)
		mx = fabsf(x[i]) > mx ? fabsf(x[i]) : mx;
	*pre = zeros(n);
	float s = 0.9f * mx / (float)qmax;
	fq_per_tensor_keep_mt(x, *pre, n, s, 0, qmin, qmax, 2);
	fq_bwd_init(fq, *pre, s, 0, qmin, qmax, true);
}

/* The naive twin's point backward: in place, LSQ sum into *acc. */
static void naive_point(const struct fq_bwd *fq, float *d, size_t n, const uint8_t *keep,
			double *acc)
{
	if (fq->pre)
		*acc += fq_bwd_tensor(d, d, fq, n, keep, 2);
}

static int compare_sums(const char *what, const double *a, const double *b, int n,
			const char *const *names)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		int off = !(fabs(a[i] - b[i]) <= 1e-4 * fabs(b[i]) + 1e-12);
		printf("  %-10s LSQ sum %-11s fused %+.9e  naive %+.9e  %s\n", what, names[i],
		       a[i], b[i], off ? "FAIL" : "OK");
		bad += off;
	}
	return bad;
}

static const char *const ln_names[LN_POINTS] = {
	"mean", "centered", "square", "var", "rstd", "normalized", "out",
};

static void test_layernorm_steps(void **state)
{
	const int M = 9, C = 37;
	const size_t MC = (size_t)M * C;
	/* a mix: two float points, int8 where clamping bites, int16 elsewhere */
	const enum qcal_dtype dt[LN_POINTS] = {
		[LN_MEAN] = QCAL_DTYPE_INT16, [LN_CENTERED] = QCAL_DTYPE_INT8,
		[LN_SQUARE] = QCAL_DTYPE_FLOAT, [LN_VAR] = QCAL_DTYPE_INT16,
		[LN_RSTD] = QCAL_DTYPE_INT8, [LN_NORMALIZED] = QCAL_DTYPE_INT16,
		[LN_OUT] = QCAL_DTYPE_INT8,
	};
	int bad = 0;
	(void)state;
	float *in = random_buf(MC, -2, 3), *w = random_buf(C, 0.5f, 1.5f), *b = random_buf(C, -1, 1);
	float *dout = random_buf(MC, -1, 1);
	float *mean = zeros(M), *cen = zeros(MC), *sq = zeros(MC), *var = zeros(M);
	float *rstd = zeros(M), *nrm = zeros(MC), *out = zeros(MC);
	struct fq_bwd fq[LN_POINTS];
	float *pre[LN_POINTS];

	/* forward, as swin_forward's layernorm() in QAT mode */
	op_row_mean(mean, in, M, C, 2);
	qat_point(&fq[LN_MEAN], &pre[LN_MEAN], mean, M, dt[LN_MEAN]);
	op_row_sub(cen, in, mean, M, C, 2);
	qat_point(&fq[LN_CENTERED], &pre[LN_CENTERED], cen, MC, dt[LN_CENTERED]);
	op_square(sq, cen, MC, 2);
	qat_point(&fq[LN_SQUARE], &pre[LN_SQUARE], sq, MC, dt[LN_SQUARE]);
	op_row_mean(var, sq, M, C, 2);
	qat_point(&fq[LN_VAR], &pre[LN_VAR], var, M, dt[LN_VAR]);
	op_rsqrt_eps(rstd, var, M, SWIN_LN_EPS, 2);
	qat_point(&fq[LN_RSTD], &pre[LN_RSTD], rstd, M, dt[LN_RSTD]);
	op_row_scale(nrm, cen, rstd, M, C, 2);
	qat_point(&fq[LN_NORMALIZED], &pre[LN_NORMALIZED], nrm, MC, dt[LN_NORMALIZED]);
	op_affine(out, nrm, w, b, M, C, 2);
	qat_point(&fq[LN_OUT], &pre[LN_OUT], out, MC, dt[LN_OUT]);

	/* fused */
	float *din = zeros(MC), *dw = zeros(C), *db = zeros(C), *scratch = zeros(2 * op_layernorm_steps_backward_scratch(C));
	double acc[LN_POINTS] = { 0 };
	op_layernorm_steps_backward(din, dw, db, acc, dout, cen, var, rstd, nrm, w, fq, scratch,
				    M, C, 2);

	/* naive chain, last step first */
	double nacc[LN_POINTS] = { 0 };
	float *g = zeros(MC), *dnrm = zeros(MC), *dcen = zeros(MC), *dsq = zeros(MC);
	float *drstd = zeros(M), *dvar = zeros(M), *dmean = zeros(M);
	float *din2 = zeros(MC), *dw2 = zeros(C), *db2 = zeros(C);
	memcpy(g, dout, MC * sizeof(float));
	naive_point(&fq[LN_OUT], g, MC, NULL, &nacc[LN_OUT]);
	op_affine_backward(dnrm, dw2, db2, g, nrm, w, M, C, 2);
	naive_point(&fq[LN_NORMALIZED], dnrm, MC, NULL, &nacc[LN_NORMALIZED]);
	op_row_scale_backward(dcen, drstd, dnrm, cen, rstd, M, C, 2);
	naive_point(&fq[LN_RSTD], drstd, M, NULL, &nacc[LN_RSTD]);
	op_rsqrt_eps_backward(dvar, drstd, var, M, SWIN_LN_EPS, 2);
	naive_point(&fq[LN_VAR], dvar, M, NULL, &nacc[LN_VAR]);
	op_row_mean_backward(dsq, dvar, M, C, 2);
	naive_point(&fq[LN_SQUARE], dsq, MC, NULL, &nacc[LN_SQUARE]);
	op_square_backward(dcen, dsq, cen, MC, 2);
	naive_point(&fq[LN_CENTERED], dcen, MC, NULL, &nacc[LN_CENTERED]);
	op_row_sub_backward(din2, dmean, dcen, M, C, 2);
	naive_point(&fq[LN_MEAN], dmean, M, NULL, &nacc[LN_MEAN]);
	op_row_mean_backward(din2, dmean, M, C, 2);

	printf("layernorm steps, %d x %d, int8/int16/float points:\n", M, C);
	bad += test_report_diff("din (fused vs naive)", din, din2, MC, TOL);
	bad += test_report_diff("dw", dw, dw2, C, TOL);
	bad += test_report_diff("db", db, db2, C, TOL);
	bad += compare_sums("layernorm", acc, nacc, LN_POINTS, ln_names);
	/* the float point contributes nothing; clamping happened somewhere */
	assert_true(acc[LN_SQUARE] == 0.0);
	size_t clamped = 0;
	for (size_t i = 0; i < MC; i++)
		clamped += fabsf(pre[LN_CENTERED][i]) > 127.0f * fq[LN_CENTERED].scale;
	printf("  %zu centered elements clamped\n", clamped);
	assert_true(clamped > 0);
	assert_int_equal(bad, 0);
	for (int i = 0; i < LN_POINTS; i++)
		free(pre[i]);
	float *bufs[] = { in, w, b, dout, mean, cen, sq, var, rstd, nrm, out, din, dw, db, scratch,
			  g, dnrm, dcen, dsq, drstd, dvar, dmean, din2, dw2, db2 };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]);
}

static const char *const at_names[AT_POINTS] = {
	"qk", "logits", "sub_max", "exp", "sum", "recip", "out",
};

static int check_attention(int shift)
{
	struct swin_window_geom g;
	swin_window_geom_init(&g, 2, 6, 6, 6, 4, shift);
	const int BW = g.B * g.nW, N = g.N, C = g.C, NH = 2, D = C / NH, nW = g.nW;
	const size_t n = (size_t)BW * N * C, att = (size_t)BW * NH * N * N, nb = (size_t)NH * N * N;
	const size_t rows = (size_t)BW * NH * N;
	const struct swin_kernels *kk = swin_kernels_blas();
	const enum qcal_dtype dt[AT_POINTS] = {
		[AT_QK] = QCAL_DTYPE_INT8, [AT_LOGITS] = QCAL_DTYPE_INT8,
		[AT_SUB_MAX] = QCAL_DTYPE_INT16, [AT_EXP] = QCAL_DTYPE_INT16,
		[AT_SUM] = QCAL_DTYPE_FLOAT, [AT_RECIP] = QCAL_DTYPE_INT16,
		[AT_OUT] = QCAL_DTYPE_INT8,
	};
	uint8_t *keep = malloc((size_t)nW * N * N), *full = malloc(att);
	assert_true(keep && full);
	op_shift_keep_mask(keep, &g);
	op_expand_keep(full, keep, g.B, nW, NH, N);
	const uint8_t *kp = shift ? keep : NULL, *kf = shift ? full : NULL;
	float *qs = random_buf(n, -2, 2), *k = random_buf(n, -2, 2), *v = random_buf(n, -1, 1);
	float *bias = random_buf(nb, -1, 1), *dav = random_buf(n, -1, 1);
	float *qk = zeros(att), *lg = zeros(att), *sm = zeros(att), *ex = zeros(att);
	float *at = zeros(att), *sum = zeros(rows), *rc = zeros(rows), *av = zeros(n);
	float *qks = zeros(2 * attn_qk_scratch(N, D));
	struct fq_bwd fq[AT_POINTS];
	float *pre[AT_POINTS];
	int bad = 0;

	/* forward, as swin_forward's decomposed block in QAT mode */
	op_attn_qk(qk, qks, qs, k, BW, NH, N, C, kk, 2);
	qat_point(&fq[AT_QK], &pre[AT_QK], qk, att, dt[AT_QK]);
	op_add_bias_heads(lg, qk, bias, BW, NH, N, 2);
	qat_point(&fq[AT_LOGITS], &pre[AT_LOGITS], lg, att, dt[AT_LOGITS]);
	op_softmax_sub_max(sm, lg, kp, BW, nW, NH, N, 2);
	qat_point(&fq[AT_SUB_MAX], &pre[AT_SUB_MAX], sm, att, dt[AT_SUB_MAX]);
	op_softmax_exp(ex, sm, kp, BW, nW, NH, N, 2);
	qat_point(&fq[AT_EXP], &pre[AT_EXP], ex, att, dt[AT_EXP]);
	op_row_sum(sum, ex, rows, N, 2);
	qat_point(&fq[AT_SUM], &pre[AT_SUM], sum, rows, dt[AT_SUM]);
	op_reciprocal(rc, sum, rows, 2);
	qat_point(&fq[AT_RECIP], &pre[AT_RECIP], rc, rows, dt[AT_RECIP]);
	op_row_scale(at, ex, rc, (int)rows, N, 2);
	qat_point(&fq[AT_OUT], &pre[AT_OUT], at, att, dt[AT_OUT]);
	op_attn_av(av, at, v, BW, NH, N, C, kk, 2);
	const float *exp_pre = pre[AT_EXP];

	/* fused */
	float *dqs = zeros(n), *dk = zeros(n), *dv = zeros(n), *dbias = zeros(nb);
	float *scratch = zeros(2 * op_attention_steps_backward_scratch(N, D, NH));
	double acc[AT_POINTS] = { 0 };
	op_attention_steps_backward(dqs, dk, dv, dbias, acc, dav, qs, k, v, lg, ex, exp_pre, sum,
				    rc, at, kp, fq, scratch, BW, nW, NH, N, C, kk, 2);

	/* naive chain */
	double nacc[AT_POINTS] = { 0 };
	float *mscratch = zeros(2 * op_attn_matmul_backward_scratch(N, D));
	float *dat = zeros(att), *dex = zeros(att), *dsm = zeros(att), *dlg = zeros(att);
	float *dqk = zeros(att), *drc = zeros(rows), *dsum = zeros(rows);
	float *dqs2 = zeros(n), *dk2 = zeros(n), *dv2 = zeros(n), *dbias2 = zeros(nb);
	op_attn_av_backward(dat, dv2, dav, at, v, mscratch, BW, NH, N, C, kk, 2);
	naive_point(&fq[AT_OUT], dat, att, NULL, &nacc[AT_OUT]);
	op_row_scale_backward(dex, drc, dat, ex, rc, (int)rows, N, 2);
	naive_point(&fq[AT_RECIP], drc, rows, NULL, &nacc[AT_RECIP]);
	op_reciprocal_backward(dsum, drc, sum, rows, 2);
	naive_point(&fq[AT_SUM], dsum, rows, NULL, &nacc[AT_SUM]);
	op_row_sum_backward(dex, dsum, rows, N, 2);
	naive_point(&fq[AT_EXP], dex, att, kf, &nacc[AT_EXP]);
	op_softmax_exp_backward(dsm, dex, exp_pre, att, 2);
	naive_point(&fq[AT_SUB_MAX], dsm, att, kf, &nacc[AT_SUB_MAX]);
	op_softmax_sub_max_backward(dlg, dsm, lg, kp, BW, nW, NH, N, 2);
	naive_point(&fq[AT_LOGITS], dlg, att, NULL, &nacc[AT_LOGITS]);
	op_add_bias_heads_backward(dqk, dbias2, dlg, BW, NH, N, 2);
	naive_point(&fq[AT_QK], dqk, att, NULL, &nacc[AT_QK]);
	op_attn_qk_backward(dqs2, dk2, dqk, qs, k, mscratch, BW, NH, N, C, kk, 2);

	printf("attention steps, shift %d, %d windows x %d heads, N = %d:\n", shift, BW, NH, N);
	bad += test_report_diff("dq_scaled (fused vs naive)", dqs, dqs2, n, TOL);
	bad += test_report_diff("dk", dk, dk2, n, TOL);
	bad += test_report_diff("dv", dv, dv2, n, TOL);
	bad += test_report_diff("dbias", dbias, dbias2, nb, TOL);
	bad += compare_sums("attention", acc, nacc, AT_POINTS, at_names);
	assert_true(acc[AT_SUM] == 0.0);
	for (int i = 0; i < AT_POINTS; i++)
		free(pre[i]);
	float *bufs[] = { qs, k, v, bias, dav, qk, lg, sm, ex, at, sum, rc, av, qks, dqs, dk, dv,
			  dbias, scratch, mscratch, dat, dex, dsm, dlg, dqk, drc, dsum, dqs2, dk2,
			  dv2, dbias2 };
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]);
	free(keep);
	free(full);
	return bad;
}

static void test_attention_steps(void **state)
{
	(void)state;
	assert_int_equal(check_attention(0) + check_attention(2), 0);
}

/* fc1 -> GELU with both points quantized: the one-pass kernel against
 * STE, GELU backward, STE in three passes. */
static void test_gelu_steps(void **state)
{
	const size_t n = 3001;  /* not a multiple of the kernel's chunks */
	int bad = 0;
	(void)state;
	float *fc1 = random_buf(n, -4, 4), *g = zeros(n), *d = random_buf(n, -1, 1);
	float *d2 = zeros(n), *gq = zeros(n);
	struct fq_bwd ff, fg;
	float *pre_fc1, *pre_g;
	/* forward: fc1's point, GELU of the quantized fc1, the GELU point */
	qat_point(&ff, &pre_fc1, fc1, n, QCAL_DTYPE_INT8);
	op_gelu_forward(g, fc1, n, 2);
	memcpy(gq, g, n * sizeof(float));
	qat_point(&fg, &pre_g, gq, n, QCAL_DTYPE_INT8);
	memcpy(d2, d, n * sizeof(float));
	double acc[2] = { 0 }, nacc[2] = { 0 };
	op_gelu_steps_backward(d, fc1, pre_g, &fg, &ff, acc, n, 2);
	naive_point(&fg, d2, n, NULL, &nacc[0]);
	op_gelu_backward_inplace(d2, fc1, g, n, 2);
	naive_point(&ff, d2, n, NULL, &nacc[1]);
	printf("gelu steps, %zu elements, int8 fc1 and gelu points:\n", n);
	bad += test_report_diff("dfc1 (fused vs naive)", d, d2, n, TOL);
	static const char *const names[2] = { "gelu", "fc1" };
	bad += compare_sums("gelu", acc, nacc, 2, names);
	assert_int_equal(bad, 0);
	free(fc1);
	free(g);
	free(d);
	free(d2);
	free(gq);
	free(pre_fc1);
	free(pre_g);
}

static int setup(void **state)
{
	(void)state;
	qcal_rng_seed(&rng, 99);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layernorm_steps),
		cmocka_unit_test(test_attention_steps),
		cmocka_unit_test(test_gelu_steps),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
