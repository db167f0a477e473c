/*
 * Fake-quant backward and losses:
 *  - known answers worked by hand (STE mask, LSQ terms in range, clamped
 *    below/above, ties at .5 rounding to even, zero points, keep masks,
 *    the gradient scale factor);
 *  - parity with PyTorch's LSQ ops (fixture from make_fq_backward_fixture.py):
 *    torch._fake_quantize_learnable_per_tensor_affine and _per_channel_affine
 *    with their grad_factor, several dtypes and zero points per tensor and an
 *    asymmetric per-channel weight: the forward bit-identical, the x gradient
 *    equal in value (torch writes -0.0 where qcal writes +0.0), the scale
 *    gradient equal to 1e-5 relative (torch sums in float, qcal in double).
 *    Per tensor with a non-zero zero point, torch's backward departs from its
 *    own forward (see torch_rule); there qcal matches the forward-consistent
 *    reference and an emulation of torch's rule reproduces torch;
 *  - cross-entropy (with and without label smoothing) and distillation at
 *    T = 4 against torch (loss and dlogits to 1e-6 relative), accumulation
 *    with weights, a central-difference check, and bad arguments.
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
#include "model/fakequant.h"
#include "model/fakequant_backward.h"
#include "model/loss.h"
#include "tests/common/test_util.h"

static hid_t open_fixture(char *path, size_t size)
{
	struct qcal_err err;
	hid_t f;

	test_source_path(path, size, "tests/backward/fixtures/fq_backward.h5");
	f = qcal_h5_open_read(path, &err);
	if (f < 0)
		fail_msg("%s", err.msg);
	return f;
}

static float *read_f(hid_t f, const char *path, const char *name, size_t *n)
{
	struct qcal_err err;
	struct qcal_h5_shape shape;
	float *p = NULL;

	if (qcal_h5_read_float(f, path, name, &p, &shape, &err) != QCAL_OK)
		fail_msg("%s", err.msg);
	if (n)
		*n = qcal_h5_shape_numel(&shape);
	return p;
}

static size_t bit_diffs(const float *a, const float *b, size_t n)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += memcmp(&a[i], &b[i], sizeof(float)) != 0;
	return d;
}

/* Worked by hand: s = 0.5, z = 0, range [-4, 3], dy = 1. */
static void test_known_answers(void **state)
{
	const float x[8] = { 0.3f, 0.25f, 0.75f, 1.6f, 1.75f, -2.0f, -2.25f, -2.3f };
	/* x/s = 0.6 0.5 1.5 3.2 3.5 -4 -4.5 -4.6; round-half-even 1 0 2 3 4 -4 -4 -5 */
	const float want_dx[8] = { 1, 1, 1, 1, 0, 1, 1, 0 };
	/* terms: 0.4, -0.5, 0.5, -0.2, clamp above qmax - z = 3, 0, 0.5, below -4 */
	const double want_sum = 0.4 - 0.5 + 0.5 - 0.2 + 3.0 + 0.0 + 0.5 - 4.0;
	float dy[8], dx[8];
	struct fq_bwd p;
	(void)state;
	for (int i = 0; i < 8; i++)
		dy[i] = 1.0f;
	fq_bwd_init(&p, x, 0.5f, 0, -4, 3, true);
	double sum = fq_bwd_tensor(dx, dy, &p, 8, NULL, 1);
	printf("  LSQ sum %.9f (want %.9f)\n", sum, want_sum);
	assert_memory_equal(dx, want_dx, sizeof(dx));
	assert_true(fabs(sum - want_sum) < 1e-6);
	/* element form agrees */
	double acc = 0.0;
	for (int i = 0; i < 8; i++)
		assert_true(fq_bwd_elem(&p, x[i], 1.0f, &acc) == want_dx[i]);
	assert_true(fabs(acc - want_sum) < 1e-6);
	/* a keep mask drops element 0 from both */
	const uint8_t keep[8] = { 0, 1, 1, 1, 1, 1, 1, 1 };
	sum = fq_bwd_tensor(dx, dy, &p, 8, keep, 1);
	assert_true(dx[0] == 0.0f && dx[1] == 1.0f);
	assert_true(fabs(sum - (want_sum - 0.4)) < 1e-6);
	/* learn off: the STE only */
	p.learn = false;
	assert_true(fq_bwd_tensor(dx, dy, &p, 8, NULL, 1) == 0.0);
	assert_memory_equal(dx, want_dx, sizeof(dx));
	/* weights, in place, with a grad factor: dscale += g * sum */
	float w[8], g[8], dscale = 1.0f;
	memcpy(w, x, sizeof(w));
	memcpy(g, dy, sizeof(g));
	fq_weight_backward_per_tensor(g, w, 8, 0.5f, 0, -4, 3, 0.25f, &dscale);
	assert_memory_equal(g, want_dx, sizeof(g));
	assert_true(fabs(dscale - (1.0 + 0.25 * want_sum)) < 1e-6);
	/* a fixed scale: STE, dscale untouched */
	memcpy(g, dy, sizeof(g));
	fq_weight_backward_per_tensor(g, w, 8, 0.5f, 0, -4, 3, 0.25f, NULL);
	assert_memory_equal(g, want_dx, sizeof(g));
	/* zero point 2, range [0, 7], s = 1:
	 * 4.6 -> 5 + 2 = 7 inside, term 5 - 4.6 = 0.4; 5.5 -> 6 + 2 = 8 above, 7 - 2 = 5;
	 * -2.6 -> -3 + 2 = -1 below, 0 - 2 = -2 */
	const float xz[3] = { 4.6f, 5.5f, -2.6f }, dyz[3] = { 1.0f, 2.0f, 3.0f };
	float dxz[3];
	fq_bwd_init(&p, xz, 1.0f, 2, 0, 7, true);
	sum = fq_bwd_tensor(dxz, dyz, &p, 3, NULL, 1);
	assert_true(dxz[0] == 1.0f && dxz[1] == 0.0f && dxz[2] == 0.0f);
	assert_true(fabs(sum - (0.4 * 1 + 5.0 * 2 + -2.0 * 3)) < 1e-5);
	/* the LSQ gradient scale */
	assert_true(fabs(fq_lsq_grad_factor(1000, 127) - 1.0 / sqrt(127000.0)) < 1e-15);
	assert_true(fq_lsq_grad_factor(0, 0) == 1.0);
	/* the QAT forward keeps the pre-quant copy and quantizes like fq_per_tensor */
	float a[8], pre[8];
	memcpy(a, x, sizeof(a));
	fq_per_tensor_keep_mt(a, pre, 8, 0.5f, 0, -4, 3, 2);
	assert_memory_equal(pre, x, sizeof(pre));
	const float want_y[8] = { 0.5f, 0.0f, 1.0f, 1.5f, 1.5f, -2.0f, -2.0f, -2.0f };
	assert_memory_equal(a, want_y, sizeof(a));
}

/* Values equal, counting -0.0 == +0.0 (torch's dy * mask gives -0.0 where
 * dy < 0 and the element is clamped; qcal writes +0.0). */
static size_t value_diffs(const float *a, const float *b, size_t n)
{
	size_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += !(a[i] == b[i]);
	return d;
}

/*
 * PyTorch 1.13's per-tensor LSQ backward, emulated: it rounds z + x * (1/s)
 * in float (so a near-tie k + 0.5 +- 1 ulp becomes an exact tie once added
 * to z, and rounds to even) and takes its zero point as (int64)(z + 0.5),
 * i.e. z + 1 for negative z, while its forward rounds x * (1/s) and adds z.
 * Returns the scale gradient (grad factor applied); dx (n) written.
 */
static double torch_rule(float *dx, const float *x, const float *dy, size_t n, float s,
			 int32_t z, int64_t lo, int64_t hi, float gf)
{
	float inv = 1.0f / s, zb = (float)(int64_t)((float)z + 0.5f);
	double acc = 0.0;
	for (size_t i = 0; i < n; i++) {
		float q = nearbyintf(zb + x[i] * inv);
		float t = q < lo ? (float)lo - zb : q > hi ? (float)hi - zb :
			  ((q - zb) * s - x[i]) * inv;
		dx[i] = q < lo || q > hi ? 0.0f : dy[i];
		acc += (double)dy[i] * t;
	}
	return acc * gf;
}

/*
 * Per tensor, seven cases.  Zero point 0 (every symmetric J5 point): the
 * forward, dx and dscale must equal torch's.  Non-zero zero points: qcal
 * keeps its backward consistent with the forward (q = round(x/s) + z, the
 * real z), so it must equal the forward-consistent reference the fixture
 * script computed, and torch's own numbers must be reproduced by the
 * emulation of its backward rule above, which pins down the difference.
 */
/* The QAT save pass on a 64-byte aligned copy (streaming stores where the
 * build has AVX-512), an odd length, two threads: equal to a plain copy plus
 * fq_per_tensor. */
static void test_keep_pass(void **state)
{
	const size_t n = 40005;
	float *x = aligned_alloc(64, 40064 * sizeof(float));
	float *pre = aligned_alloc(64, 40064 * sizeof(float));
	float *orig = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
	(void)state;
	assert_true(x && pre && orig && want);
	for (size_t i = 0; i < n; i++)
		orig[i] = (float)((double)(i % 997) * 0.013 - 6.1);
	memcpy(x, orig, n * sizeof(float));
	fq_per_tensor_to(want, orig, n, 0.041f, 3, -128, 127);
	fq_per_tensor_keep_mt(x, pre, n, 0.041f, 3, -128, 127, 2);
	assert_int_equal(bit_diffs(pre, orig, n), 0);
	assert_int_equal(bit_diffs(x, want, n), 0);
	/* and through an unaligned copy */
	memcpy(x, orig, n * sizeof(float));
	fq_per_tensor_keep_mt(x, pre + 1, n, 0.041f, 3, -128, 127, 2);
	assert_int_equal(bit_diffs(pre + 1, orig, n), 0);
	assert_int_equal(bit_diffs(x, want, n), 0);
	free(x);
	free(pre);
	free(orig);
	free(want);
}

static void test_torch_per_tensor(void **state)
{
	static const char *const cases[] = { "int8_sym", "int16_sym", "int4_sym", "uint8_aff",
					     "int8_aff_pos", "uint8_odd_zp", "int8_neg_zp" };
	char path[512], name[64];
	hid_t f = open_fixture(path, sizeof(path));
	int failures = 0;
	(void)state;
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t n;
#define READ(var, key) \
		snprintf(name, sizeof(name), "%s/" key, cases[c]); \
		float *var = read_f(f, path, name, NULL)
		snprintf(name, sizeof(name), "%s/x", cases[c]);
		float *x = read_f(f, path, name, &n);
		READ(dy, "dy");
		READ(ty, "y");
		READ(tdx, "dx");
		READ(tds, "dscale");
		READ(cdx, "consistent_dx");
		READ(cds, "consistent_dscale");
		READ(prm, "params");
#undef READ
		float s = prm[0], gf = prm[4];
		int32_t z = (int32_t)prm[1];
		int64_t lo = (int64_t)prm[2], hi = (int64_t)prm[3];
		float *y = malloc(n * sizeof(float)), *pre = malloc(n * sizeof(float));
		float *dw = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));
		float *ex = malloc(n * sizeof(float));
		assert_true(y && pre && dw && dx && ex);
		/* forward: bit-exact with torch for every zero point */
		memcpy(y, x, n * sizeof(float));
		fq_per_tensor_keep_mt(y, pre, n, s, z, lo, hi, 2);
		size_t yd = bit_diffs(y, ty, n);
		/* weight form (in place, grad factor inside) */
		float dscale = 0.0f;
		memcpy(dw, dy, n * sizeof(float));
		fq_weight_backward_per_tensor(dw, x, n, s, z, lo, hi, gf, &dscale);
		/* activation form (threads; the caller applies the grad factor) */
		struct fq_bwd p;
		fq_bwd_init(&p, x, s, z, lo, hi, true);
		double sum = fq_bwd_tensor(dx, dy, &p, n, NULL, 2) * gf;
		size_t clamped = 0;
		for (size_t i = 0; i < n; i++)
			clamped += dw[i] == 0.0f;
		/* against the reference our definition must meet */
		const float *rdx = z == 0 ? tdx : cdx;
		double rds = z == 0 ? tds[0] : cds[0];
		size_t d1 = value_diffs(dw, rdx, n), d2 = value_diffs(dx, rdx, n);
		double rel = fabs(dscale - rds) / fabs(rds), rel2 = fabs(sum - rds) / fabs(rds);
		int bad = yd || d1 || d2 || !(rel <= 1e-5) || !(rel2 <= 1e-5);
		printf("  %-12s z=%-4d n=%zu (%zu clamped): y %zu bits, dx %zu/%zu values differ "
		       "from %s; dscale %.7e vs %.7e (rel %.1e)  %s\n", cases[c], z, n, clamped, yd,
		       d1, d2, z == 0 ? "torch" : "the forward-consistent reference", dscale, rds,
		       rel, bad ? "FAIL" : "OK");
		failures += bad;
		if (z != 0) {
			/* torch's numbers follow from its backward rule */
			double eds = torch_rule(ex, x, dy, n, s, z, lo, hi, gf);
			size_t d3 = value_diffs(ex, tdx, n);
			double rel3 = fabs(eds - tds[0]) / fabs(tds[0]);
			int bad3 = d3 || !(rel3 <= 1e-5);
			printf("  %-12s torch dscale %.7e (ours %+.2f%%), its backward rule emulated "
			       "%.7e (rel %.1e), dx %zu values differ  %s\n", "", tds[0],
			       100.0 * (dscale - tds[0]) / fabs(tds[0]), eds, rel3, d3,
			       bad3 ? "FAIL" : "OK");
			failures += bad3;
		}
		float *bufs[] = { x, dy, ty, tdx, tds, cdx, cds, prm, y, pre, dw, dx, ex };
		for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
			free(bufs[i]);
	}
	H5Fclose(f);
	assert_int_equal(failures, 0);
}

static void test_torch_per_channel(void **state)
{
	char path[512];
	hid_t f = open_fixture(path, sizeof(path));
	size_t n, C;
	(void)state;
	float *w = read_f(f, path, "per_channel/w", &n);
	float *scales = read_f(f, path, "per_channel/scales", &C);
	float *zpf = read_f(f, path, "per_channel/zero_points", NULL);
	float *dy = read_f(f, path, "per_channel/dy", NULL);
	float *ty = read_f(f, path, "per_channel/y", NULL);
	float *tdw = read_f(f, path, "per_channel/dw", NULL);
	float *tds = read_f(f, path, "per_channel/dscales", NULL);
	float *prm = read_f(f, path, "per_channel/params", NULL);
	size_t inner = n / C;
	int32_t *zps = malloc(C * sizeof(int32_t));
	float *y = malloc(n * sizeof(float)), *pre = malloc(n * sizeof(float));
	float *dscales = calloc(C, sizeof(float));
	assert_true(zps && y && pre && dscales);
	for (size_t c = 0; c < C; c++)
		zps[c] = (int32_t)zpf[c];
	for (size_t c = 0; c < C; c++) {
		memcpy(y + c * inner, w + c * inner, inner * sizeof(float));
		fq_per_tensor_keep_mt(y + c * inner, pre + c * inner, inner, scales[c], zps[c],
				      (int64_t)prm[0], (int64_t)prm[1], 1);
	}
	memcpy(pre, dy, n * sizeof(float));
	fq_weight_backward_per_channel(pre, w, (int)C, inner, scales, zps, (int64_t)prm[0],
				       (int64_t)prm[1], prm[2], dscales);
	size_t yd = bit_diffs(y, ty, n), dd = value_diffs(pre, tdw, n);
	printf("  per channel (%zu x %zu, zero points %d..%d): y %zu bits, dw %zu values differ\n",
	       C, inner, zps[0], zps[C - 1], yd, dd);
	assert_int_equal(yd, 0);
	assert_int_equal(dd, 0);
	/* channel sums of ~50 float terms: 1e-5 of the largest channel's */
	assert_int_equal(test_report_diff("dscales vs torch", dscales, tds, C, 1e-5), 0);
	free(w);
	free(scales);
	free(zpf);
	free(dy);
	free(ty);
	free(tdw);
	free(tds);
	free(prm);
	free(zps);
	free(y);
	free(pre);
	free(dscales);
	H5Fclose(f);
}

static void test_losses_torch(void **state)
{
	char path[512];
	struct qcal_err err;
	hid_t f = open_fixture(path, sizeof(path));
	size_t n;
	(void)state;
	float *logits = read_f(f, path, "loss/logits", &n);
	float *teacher = read_f(f, path, "loss/teacher", NULL);
	float *lf = read_f(f, path, "loss/labels", NULL);
	const int B = 6, K = 7;
	int labels[6];
	assert_int_equal(n, (size_t)B * K);
	for (int b = 0; b < B; b++)
		labels[b] = (int)lf[b];
	int failures = 0;
	const char *names[3] = { "ce_0", "ce_0.1", "kd_T4" };
	for (int t = 0; t < 3; t++) {
		char key[64];
		float dl[42] = { 0 };
		double loss;
		snprintf(key, sizeof(key), "loss/%s", names[t]);
		float *want = read_f(f, path, key, NULL);
		snprintf(key, sizeof(key), "loss/%s_grad", names[t]);
		float *want_g = read_f(f, path, key, NULL);
		if (t < 2)
			assert_int_equal(loss_cross_entropy(&loss, dl, logits, labels, B, K,
							    t == 0 ? 0.0 : 0.1, 1.0, &err), QCAL_OK);
		else
			assert_int_equal(loss_distillation(&loss, dl, logits, teacher, B, K, 4.0, 1.0,
							   &err), QCAL_OK);
		int bad = !(fabs(loss - want[0]) <= 1e-6 * fabs(want[0]));
		printf("  %-7s loss %.9f torch %.9f  %s\n", names[t], loss, want[0],
		       bad ? "FAIL" : "OK");
		failures += bad;
		failures += test_report_diff("  dlogits", dl, want_g, n, 1e-6);
		free(want);
		free(want_g);
	}
	assert_int_equal(failures, 0);
	free(logits);
	free(teacher);
	free(lf);
	H5Fclose(f);
}

/* Accumulation with weights, central differences, bad arguments. */
static void test_losses_contract(void **state)
{
	float logits[2 * 3] = { 1.0f, -0.5f, 2.0f, 0.3f, 0.1f, -1.2f };
	float teacher[2 * 3] = { 0.5f, 0.0f, 1.0f, -1.0f, 2.0f, 0.2f };
	int labels[2] = { 2, 0 }, bad_labels[2] = { 0, 3 };
	float d1[6] = { 0 }, d2[6] = { 0 };
	double l1, l2;
	struct qcal_err err;
	(void)state;
	assert_int_equal(loss_cross_entropy(&l1, d1, logits, labels, 2, 3, 0.2, 1.0, &err), QCAL_OK);
	assert_int_equal(loss_cross_entropy(&l2, d2, logits, labels, 2, 3, 0.2, 0.5, &err), QCAL_OK);
	assert_int_equal(loss_cross_entropy(&l2, d2, logits, labels, 2, 3, 0.2, 0.5, &err), QCAL_OK);
	assert_true(l1 == l2);
	for (int i = 0; i < 6; i++)
		assert_true(fabs(d1[i] - d2[i]) <= 1e-7);
	/* each row of a CE gradient sums to zero */
	assert_true(fabs(d1[0] + d1[1] + d1[2]) < 1e-7);
	/* central differences of both losses (h = 1e-2, O(h^2) ~ 1e-5) */
	for (int which = 0; which < 2; which++) {
		float d[6] = { 0 };
		double l;
		if (which == 0)
			loss_cross_entropy(&l, d, logits, labels, 2, 3, 0.1, 1.0, &err);
		else
			loss_distillation(&l, d, logits, teacher, 2, 3, 2.0, 1.0, &err);
		for (int i = 0; i < 6; i++) {
			float keep = logits[i];
			double lp, lm;
			logits[i] = keep + 1e-2f;
			if (which == 0)
				loss_cross_entropy(&lp, NULL, logits, labels, 2, 3, 0.1, 1.0, &err);
			else
				loss_distillation(&lp, NULL, logits, teacher, 2, 3, 2.0, 1.0, &err);
			logits[i] = keep - 1e-2f;
			if (which == 0)
				loss_cross_entropy(&lm, NULL, logits, labels, 2, 3, 0.1, 1.0, &err);
			else
				loss_distillation(&lm, NULL, logits, teacher, 2, 3, 2.0, 1.0, &err);
			logits[i] = keep;
			double fd = (lp - lm) / ((double)(keep + 1e-2f) - (double)(keep - 1e-2f));
			assert_true(fabs(fd - d[i]) < 2e-5);
		}
	}
	/* KL of a distribution with itself is zero, and so is its gradient */
	{
		float d[6] = { 0 };
		double l;
		assert_int_equal(loss_distillation(&l, d, teacher, teacher, 2, 3, 3.0, 1.0, &err),
				 QCAL_OK);
		assert_true(fabs(l) < 1e-12);
		for (int i = 0; i < 6; i++)
			assert_true(fabs(d[i]) < 1e-7);
	}
	/* logit MSE: known answer (torch mse_loss), its gradient, and zero at the teacher */
	{
		float d[6] = { 0 };
		double l, expect = 0.0;
		for (int i = 0; i < 6; i++)
			expect += ((double)logits[i] - teacher[i]) * ((double)logits[i] - teacher[i]);
		expect /= 6.0; /* (0.25+0.25+1+1.69+3.61+1.96)/6 = 1.46 */
		assert_int_equal(loss_logit_mse(&l, d, logits, teacher, 2, 3, 0.5, &err), QCAL_OK);
		assert_true(fabs(l - 1.46) < 1e-6 && fabs(l - expect) < 1e-12);
		for (int i = 0; i < 6; i++)
			assert_true(fabs(d[i] - 0.5 * 2.0 * ((double)logits[i] - teacher[i]) / 6.0) < 1e-7);
		float z[6] = { 0 };
		assert_int_equal(loss_logit_mse(&l, z, teacher, teacher, 2, 3, 1.0, &err), QCAL_OK);
		assert_true(l == 0.0);
		for (int i = 0; i < 6; i++)
			assert_true(z[i] == 0.0f);
		assert_int_equal(loss_logit_mse(&l, z, logits, teacher, 0, 3, 1.0, &err), QCAL_EINVAL);
	}
	/* bad arguments: one-line errors, nothing accumulated */
	float untouched[6] = { 0 };
	assert_int_equal(loss_cross_entropy(&l1, untouched, logits, bad_labels, 2, 3, 0.0, 1.0, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	assert_non_null(strstr(err.msg, "label 3 of image 1"));
	assert_int_equal(loss_cross_entropy(&l1, untouched, logits, labels, 2, 3, 1.5, 1.0, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	assert_int_equal(loss_distillation(&l1, untouched, logits, teacher, 2, 3, 0.0, 1.0, &err),
			 QCAL_EINVAL);
	printf("  %s\n", err.msg);
	assert_int_equal(loss_distillation(&l1, untouched, logits, teacher, 0, 3, 1.0, 1.0, &err),
			 QCAL_EINVAL);
	for (int i = 0; i < 6; i++)
		assert_true(untouched[i] == 0.0f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_keep_pass),
		cmocka_unit_test(test_torch_per_tensor),
		cmocka_unit_test(test_torch_per_channel),
		cmocka_unit_test(test_losses_torch),
		cmocka_unit_test(test_losses_contract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
