/*
 * Finite-difference checks of every backward kernel, ggml style: for each
 * op a naive double-precision twin of its forward sits in this file; central
 * differences of L = sum(G * f(x)) on the twin (G a random upstream
 * gradient) give the reference gradient of every input, and
 *
 *   - the float backward kernel must match it:  max|diff| <= 1e-5 * max|ref|
 *     (float32 rounding of the kernel, seen at <= 6e-7; the double
 *     differences, step 1e-5 on inputs of magnitude ~1, are exact to ~1e-9);
 *   - the float forward must match the double twin: max|diff| <= 2e-6 * max|ref|.
 *
 * Shapes are tiny and odd on purpose: padded windows (6x6 tokens in 4x4
 * windows), shifted and unshifted windows, several heads, odd patch merges
 * (5x5), a patch size that does not divide the image, and row widths that
 * are not multiples of the 16-lane loops.  Kernels with GEMMs run with both
 * kernel tables (OpenBLAS and the naive twin).
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

#include "core/rng.h"
#include "model/swin_ops.h"
#include "model/swin_ops_backward.h"
#include "model/swin_params.h"

#define GRAD_TOL 1e-5
#define FWD_TOL 2e-6
#define FD_EPS 1e-5

/* ---- harness ---- */

/* A forward twin: y (ny) = f(x (nx)) in double; ctx carries dimensions. */
typedef void (*ref_fn)(const void *ctx, const double *x, double *y);

struct fd {
	ref_fn f;
	const void *ctx;
	size_t nx, ny;
	double *x, *g;     /* inputs (nx), upstream gradient (ny) */
	double *grad;      /* reference d(sum g*y)/dx (nx) */
	float *xf, *gf;    /* the same values as float, for the kernels */
	double *yp, *ym;
};

static struct qcal_rng rng;

static double rnd(double lo, double hi)
{
	return lo + (hi - lo) * qcal_rng_uniform(&rng);
}

/* Random inputs in [lo, hi) (exactly representable in float) and G in [-1, 1). */
static void fd_init(struct fd *p, ref_fn f, const void *ctx, size_t nx, size_t ny,
		    double lo, double hi)
{
	memset(p, 0, sizeof(*p));
	p->f = f;
	p->ctx = ctx;
	p->nx = nx;
	p->ny = ny;
	p->x = malloc(nx * sizeof(double));
	p->grad = malloc(nx * sizeof(double));
	p->xf = malloc(nx * sizeof(float));
	p->g = malloc(ny * sizeof(double));
	p->gf = malloc(ny * sizeof(float));
	p->yp = malloc(ny * sizeof(double));
	p->ym = malloc(ny * sizeof(double));
	assert_true(p->x && p->grad && p->xf && p->g && p->gf && p->yp && p->ym);
	for (size_t i = 0; i < nx; i++) {
		p->xf[i] = (float)rnd(lo, hi);
		p->x[i] = p->xf[i];
	}
	for (size_t i = 0; i < ny; i++) {
		p->gf[i] = (float)rnd(-1, 1);
		p->g[i] = p->gf[i];
	}
}

/* Set input i (both copies). */
static void fd_set_input(struct fd *p, size_t i, float v)
{
	p->xf[i] = v;
	p->x[i] = v;
}

static void fd_free(struct fd *p)
{
	free(p->x);
	free(p->grad);
	free(p->xf);
	free(p->g);
	free(p->gf);
	free(p->yp);
	free(p->ym);
}

static void fd_run(struct fd *p)
{
	for (size_t i = 0; i < p->nx; i++) {
		double xi = p->x[i], acc = 0.0;
		p->x[i] = xi + FD_EPS;
		p->f(p->ctx, p->x, p->yp);
		p->x[i] = xi - FD_EPS;
		p->f(p->ctx, p->x, p->ym);
		p->x[i] = xi;
		for (size_t j = 0; j < p->ny; j++)
			acc += p->g[j] * (p->yp[j] - p->ym[j]);
		p->grad[i] = acc / (2 * FD_EPS);
	}
}

/* got (n) against ref (n) within tol * max|ref|; prints one line. */
static int check(const char *op, const char *what, const float *got, const double *ref,
		 size_t n, double tol)
{
	double md = 0.0, mr = 0.0;

	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)got[i] - ref[i]);
		if (!(d <= md))
			md = isnan(d) ? INFINITY : d;
		if (fabs(ref[i]) > mr)
			mr = fabs(ref[i]);
	}
	int bad = !(md <= tol * mr) || (mr == 0.0 && md != 0.0);
	printf("  %-34s %-8s max|diff| = %.2e  max|ref| = %.2e  ratio = %.1e  %s\n", op, what,
	       md, mr, mr > 0 ? md / mr : md, bad ? "FAIL" : "OK");
	return bad;
}

/* Compare the float forward y (ny) with the twin at the fd's inputs. */
static int check_forward(const char *op, struct fd *p, const float *y)
{
	p->f(p->ctx, p->x, p->yp);
	return check(op, "forward", y, p->yp, p->ny, FWD_TOL);
}

static float *zeros(size_t n)
{
	float *p = calloc(n ? n : 1, sizeof(float));
	assert_non_null(p);
	return p;
}

static const struct swin_kernels *tables[2];
static const char *table_names[2] = { "openblas", "naive" };

/* ---- linear ---- */

struct lin { int M, K, N; };

static void linear_ref(const void *c, const double *x, double *y)
{
	const struct lin *d = c;
	const double *X = x, *W = x + d->M * d->K, *b = W + d->N * d->K;
	for (int m = 0; m < d->M; m++)
		for (int n = 0; n < d->N; n++) {
			double acc = b[n];
			for (int k = 0; k < d->K; k++)
				acc += X[m * d->K + k] * W[n * d->K + k];
			y[m * d->N + n] = acc;
		}
}

static void test_linear(void **state)
{
	struct lin d = { 5, 19, 7 };
	int bad = 0;
	(void)state;
	for (int t = 0; t < 2; t++) {
		struct fd p;
		char op[64];
		size_t nX = (size_t)d.M * d.K, nW = (size_t)d.N * d.K;
		fd_init(&p, linear_ref, &d, nX + nW + d.N, (size_t)d.M * d.N, -1, 1);
		fd_run(&p);
		float *y = zeros(p.ny), *dx = zeros(nX), *dw = zeros(nW), *db = zeros(d.N);
		op_linear_forward(y, p.xf, p.xf + nX, p.xf + nX + nW, d.M, d.K, d.N, tables[t], 2);
		op_linear_backward(dx, dw, db, p.gf, p.xf, p.xf + nX, d.M, d.K, d.N, tables[t], 2);
		snprintf(op, sizeof(op), "linear (%s)", table_names[t]);
		bad += check_forward(op, &p, y);
		bad += check(op, "dX", dx, p.grad, nX, GRAD_TOL);
		bad += check(op, "dW", dw, p.grad + nX, nW, GRAD_TOL);
		bad += check(op, "db", db, p.grad + nX + nW, d.N, GRAD_TOL);
		/* accumulation: a second call doubles every gradient */
		op_linear_backward(dx, dw, db, p.gf, p.xf, p.xf + nX, d.M, d.K, d.N, tables[t], 2);
		for (size_t i = 0; i < nX; i++)
			p.grad[i] *= 2;
		bad += check(op, "2x dX", dx, p.grad, nX, GRAD_TOL);
		free(y);
		free(dx);
		free(dw);
		free(db);
		fd_free(&p);
	}
	assert_int_equal(bad, 0);
}

/* ---- patch embedding ---- */

struct patch { int B, Cin, H, W, P, E; };

static void patch_ref(const void *c, const double *x, double *y)
{
	const struct patch *d = c;
	int Ho = d->H / d->P, Wo = d->W / d->P, K = d->Cin * d->P * d->P;
	const double *in = x, *w = x + (size_t)d->B * d->Cin * d->H * d->W, *b = w + (size_t)d->E * K;
	for (int bi = 0; bi < d->B; bi++)
		for (int oy = 0; oy < Ho; oy++)
			for (int ox = 0; ox < Wo; ox++)
				for (int e = 0; e < d->E; e++) {
					double acc = b[e];
					for (int c2 = 0; c2 < d->Cin; c2++)
						for (int ky = 0; ky < d->P; ky++)
							for (int kx = 0; kx < d->P; kx++)
								acc += in[((bi * d->Cin + c2) * d->H + oy * d->P + ky) * d->W + ox * d->P + kx] *
								       w[((e * d->Cin + c2) * d->P + ky) * d->P + kx];
					y[((bi * Ho + oy) * Wo + ox) * d->E + e] = acc;
				}
}

static void test_patch_embed(void **state)
{
	/* 7x7 image, patch 2: the last row and column of pixels are cut */
	struct patch d = { 2, 3, 7, 7, 2, 5 };
	int bad = 0;
	(void)state;
	for (int t = 0; t < 2; t++) {
		struct fd p;
		char op[64];
		int K = d.Cin * d.P * d.P, rows = d.B * (d.H / d.P) * (d.W / d.P);
		size_t nin = (size_t)d.B * d.Cin * d.H * d.W, nw = (size_t)d.E * K;
		fd_init(&p, patch_ref, &d, nin + nw + d.E, (size_t)rows * d.E, -1, 1);
		fd_run(&p);
		float *y = zeros(p.ny), *cols = zeros((size_t)rows * K), *dcols = zeros((size_t)rows * K);
		float *din = zeros(nin), *dw = zeros(nw), *db = zeros(d.E);
		op_patch_embed_forward(y, cols, p.xf, p.xf + nin, p.xf + nin + nw, d.B, d.Cin,
				       d.H, d.W, d.P, d.E, tables[t], 2);
		op_patch_embed_backward(din, dw, db, dcols, p.gf, cols, p.xf + nin, d.B, d.Cin,
					d.H, d.W, d.P, d.E, tables[t], 2);
		snprintf(op, sizeof(op), "patch embed 7x7/2 (%s)", table_names[t]);
		bad += check_forward(op, &p, y);
		bad += check(op, "dinput", din, p.grad, nin, GRAD_TOL);
		bad += check(op, "dW", dw, p.grad + nin, nw, GRAD_TOL);
		bad += check(op, "db", db, p.grad + nin + nw, d.E, GRAD_TOL);
		free(y);
		free(cols);
		free(dcols);
		free(din);
		free(dw);
		free(db);
		fd_free(&p);
	}
	assert_int_equal(bad, 0);
}

/* ---- LayerNorm (fused, and the fused decomposed kernel with float points) ---- */

struct rows { int M, C; };

static void layernorm_ref(const void *c, const double *x, double *y)
{
	const struct rows *d = c;
	const double *w = x + (size_t)d->M * d->C, *b = w + d->C;
	for (int i = 0; i < d->M; i++) {
		const double *r = x + (size_t)i * d->C;
		double m = 0, v = 0;
		for (int j = 0; j < d->C; j++)
			m += r[j];
		m /= d->C;
		for (int j = 0; j < d->C; j++)
			v += (r[j] - m) * (r[j] - m);
		v /= d->C;
		for (int j = 0; j < d->C; j++)
			y[(size_t)i * d->C + j] = (r[j] - m) / sqrt(v + (double)SWIN_LN_EPS) * w[j] + b[j];
	}
}

static void test_layernorm(void **state)
{
	struct rows d = { 6, 37 };
	struct fd p;
	int bad = 0;
	size_t MC = (size_t)d.M * d.C;
	(void)state;
	fd_init(&p, layernorm_ref, &d, MC + 2 * d.C, MC, -2, 2);
	fd_run(&p);
	const float *in = p.xf, *w = p.xf + MC, *b = w + d.C;
	float *y = zeros(MC), *mean = zeros(d.M), *rstd = zeros(d.M);
	float *dx = zeros(MC), *dw = zeros(d.C), *db = zeros(d.C);
	float *lscratch = zeros(2 * op_layernorm_backward_scratch(d.C));
	op_layernorm_forward(y, mean, rstd, in, w, b, d.M, d.C, 2);
	op_layernorm_backward(dx, dw, db, p.gf, in, mean, rstd, w, lscratch, d.M, d.C, 2);
	bad += check_forward("layernorm (fused)", &p, y);
	bad += check("layernorm (fused)", "dx", dx, p.grad, MC, GRAD_TOL);
	bad += check("layernorm (fused)", "dw", dw, p.grad + MC, d.C, GRAD_TOL);
	bad += check("layernorm (fused)", "db", db, p.grad + MC + d.C, d.C, GRAD_TOL);

	/* the decomposed kernel, every point float */
	float *cen = zeros(MC), *sq = zeros(MC), *var = zeros(d.M), *nrm = zeros(MC);
	float *scratch = zeros(2 * op_layernorm_steps_backward_scratch(d.C));
	struct fq_bwd fq[LN_POINTS];
	double acc[LN_POINTS] = { 0 };
	memset(fq, 0, sizeof(fq));
	memset(dx, 0, MC * sizeof(float));
	memset(dw, 0, d.C * sizeof(float));
	memset(db, 0, d.C * sizeof(float));
	op_layernorm_steps_forward(mean, cen, sq, var, rstd, nrm, y, in, w, b, d.M, d.C, 2);
	op_layernorm_steps_backward(dx, dw, db, acc, p.gf, cen, var, rstd, nrm, w, fq, scratch,
				    d.M, d.C, 2);
	bad += check_forward("layernorm (decomposed steps)", &p, y);
	bad += check("layernorm (decomposed steps)", "dx", dx, p.grad, MC, GRAD_TOL);
	bad += check("layernorm (decomposed steps)", "dw", dw, p.grad + MC, d.C, GRAD_TOL);
	bad += check("layernorm (decomposed steps)", "db", db, p.grad + MC + d.C, d.C, GRAD_TOL);
	for (int i = 0; i < LN_POINTS; i++)
		assert_true(acc[i] == 0.0);
	free(cen);
	free(sq);
	free(var);
	free(nrm);
	free(scratch);
	free(lscratch);
	free(y);
	free(mean);
	free(rstd);
	free(dx);
	free(dw);
	free(db);
	fd_free(&p);
	assert_int_equal(bad, 0);
}

/* ---- window partition / reverse ---- */

static void partition_ref(const void *c, const double *x, double *y)
{
	const struct swin_window_geom *g = c;
	for (int bw = 0; bw < g->B * g->nW; bw++) {
		int b = bw / g->nW, w = bw % g->nW, wy = w / g->nWw, wx = w % g->nWw;
		for (int iy = 0; iy < g->ws; iy++)
			for (int ix = 0; ix < g->ws; ix++) {
				int sh = (wy * g->ws + iy + g->shift) % g->Hp;
				int sw = (wx * g->ws + ix + g->shift) % g->Wp;
				for (int ch = 0; ch < g->C; ch++)
					y[((size_t)bw * g->N + iy * g->ws + ix) * g->C + ch] =
						sh < g->H && sw < g->W ?
						x[(((size_t)b * g->H + sh) * g->W + sw) * g->C + ch] : 0.0;
			}
	}
}

/* out = res + reverse(y): x = [res (B,H,W,C) | y (BW,N,C)] */
static void reverse_ref(const void *c, const double *x, double *out)
{
	const struct swin_window_geom *g = c;
	size_t n = (size_t)g->B * g->H * g->W * g->C;
	const double *y = x + n;
	for (int b = 0; b < g->B; b++)
		for (int h = 0; h < g->H; h++)
			for (int w = 0; w < g->W; w++) {
				int hr = (h - g->shift + g->Hp) % g->Hp, wr = (w - g->shift + g->Wp) % g->Wp;
				size_t win = (size_t)b * g->nW + (hr / g->ws) * g->nWw + wr / g->ws;
				size_t src = (win * g->N + (hr % g->ws) * g->ws + wr % g->ws) * g->C;
				size_t o = (((size_t)b * g->H + h) * g->W + w) * g->C;
				for (int ch = 0; ch < g->C; ch++)
					out[o + ch] = x[o + ch] + y[src + ch];
			}
}

static void test_windows(void **state)
{
	int bad = 0;
	(void)state;
	/* 6x6 tokens in 4x4 windows: padded to 8x8, unshifted and shifted */
	for (int shift = 0; shift <= 2; shift += 2) {
		struct swin_window_geom g;
		struct fd p;
		char op[64];
		swin_window_geom_init(&g, 2, 6, 6, 3, 4, shift);
		size_t nx = (size_t)g.B * g.H * g.W * g.C, nw = (size_t)g.B * g.nW * g.N * g.C;
		fd_init(&p, partition_ref, &g, nx, nw, -1, 1);
		fd_run(&p);
		float *xw = zeros(nw), *dx = zeros(nx);
		op_window_partition(xw, p.xf, &g, 2);
		op_window_partition_backward(dx, p.gf, &g, 2);
		snprintf(op, sizeof(op), "window partition (shift %d)", shift);
		bad += check_forward(op, &p, xw);
		bad += check(op, "dx", dx, p.grad, nx, GRAD_TOL);
		fd_free(&p);
		free(xw);
		free(dx);

		fd_init(&p, reverse_ref, &g, nx + nw, nx, -1, 1);
		fd_run(&p);
		float *out = zeros(nx), *dres = zeros(nx), *dy = zeros(nw);
		op_window_reverse_add(out, p.xf, p.xf + nx, &g, 2);
		op_window_reverse_add_backward(dres, dy, p.gf, &g, 2);
		snprintf(op, sizeof(op), "window reverse + add (shift %d)", shift);
		bad += check_forward(op, &p, out);
		bad += check(op, "dres", dres, p.grad, nx, GRAD_TOL);
		bad += check(op, "dy", dy, p.grad + nx, nw, GRAD_TOL);
		fd_free(&p);
		free(out);
		free(dres);
		free(dy);
	}
	assert_int_equal(bad, 0);
}

/* ---- relative position bias gather, qkv split ---- */

struct relb { int NH, ws; const int32_t *index; };

static void rel_bias_ref(const void *c, const double *x, double *y)
{
	const struct relb *d = c;
	int N = d->ws * d->ws;
	for (int h = 0; h < d->NH; h++)
		for (int ij = 0; ij < N * N; ij++)
			y[h * N * N + ij] = x[d->index[ij] * d->NH + h];
}

struct qkvd { int rows, C; };

static void split_ref(const void *c, const double *x, double *y)
{
	const struct qkvd *d = c;
	size_t n = (size_t)d->rows * d->C;
	for (int r = 0; r < d->rows; r++)
		for (int ch = 0; ch < d->C; ch++)
			for (int part = 0; part < 3; part++)
				y[part * n + (size_t)r * d->C + ch] = x[((size_t)r * 3 + part) * d->C + ch];
}

static void test_gathers(void **state)
{
	int bad = 0;
	int32_t index[9 * 9];
	struct relb d = { 3, 3, index };
	struct fd p;
	(void)state;
	swin_relative_position_index(3, index);
	fd_init(&p, rel_bias_ref, &d, 25 * 3, 3 * 81, -1, 1);
	fd_run(&p);
	float *bias = zeros(3 * 81), *dt = zeros(25 * 3);
	op_gather_rel_bias(bias, p.xf, index, 3, 9);
	op_gather_rel_bias_backward(dt, p.gf, index, 3, 9);
	bad += check_forward("relative position bias gather", &p, bias);
	bad += check("relative position bias gather", "dtable", dt, p.grad, 75, GRAD_TOL);
	free(bias);
	free(dt);
	fd_free(&p);

	struct qkvd q = { 7, 5 };
	size_t n = 35;
	fd_init(&p, split_ref, &q, 3 * n, 3 * n, -1, 1);
	fd_run(&p);
	float *y = zeros(3 * n), *dqkv = zeros(3 * n);
	op_split_qkv(y, y + n, y + 2 * n, p.xf, 7, 5, 2);
	op_split_qkv_backward(dqkv, p.gf, p.gf + n, p.gf + 2 * n, 7, 5, 2);
	bad += check_forward("qkv split", &p, y);
	bad += check("qkv split", "dqkv", dqkv, p.grad, 3 * n, GRAD_TOL);
	free(y);
	free(dqkv);
	fd_free(&p);
	assert_int_equal(bad, 0);
}

/* ---- window attention: fused float kernel and the decomposed one ---- */

struct attn {
	int BW, nW, NH, N, C;
	float q_scale;        /* applied to q inside the twin (fused op); 1 for q_scaled */
	const uint8_t *keep;  /* (nW, N, N) or NULL */
};

/* x = [q (BW,N,C) | k | v | bias (NH,N,N)] -> av (BW,N,C) */
static void attention_ref(const void *c, const double *x, double *y)
{
	const struct attn *d = c;
	int N = d->N, C = d->C, D = C / d->NH;
	size_t n = (size_t)d->BW * N * C;
	const double *q = x, *k = x + n, *v = x + 2 * n, *bias = x + 3 * n;
	double s[64];
	for (int bw = 0; bw < d->BW; bw++)
		for (int h = 0; h < d->NH; h++)
			for (int i = 0; i < N; i++) {
				const uint8_t *kr = d->keep ? d->keep + ((size_t)(bw % d->nW) * N + i) * N : NULL;
				double mx = -INFINITY, sum = 0;
				for (int j = 0; j < N; j++) {
					double acc = 0;
					for (int e = 0; e < D; e++)
						acc += q[((size_t)bw * N + i) * C + h * D + e] * d->q_scale *
						       k[((size_t)bw * N + j) * C + h * D + e];
					s[j] = acc + bias[((size_t)h * N + i) * N + j];
					if ((!kr || kr[j]) && s[j] > mx)
						mx = s[j];
				}
				for (int j = 0; j < N; j++) {
					s[j] = !kr || kr[j] ? exp(s[j] - mx) : 0.0;
					sum += s[j];
				}
				for (int e = 0; e < D; e++) {
					double acc = 0;
					for (int j = 0; j < N; j++)
						acc += s[j] / sum * v[((size_t)bw * N + j) * C + h * D + e];
					y[((size_t)bw * N + i) * C + h * D + e] = acc;
				}
			}
}

/*
 * The fused float kernel on windows of a 6x6 grid (padded to 8x8, 4x4
 * windows), shifted or not, two heads of three channels; dq, dk, dv are
 * written into a (BW, N, 3C) buffer as the model does.  One reference, both
 * kernel tables.
 */
static int check_fused_attention(int shift)
{
	struct swin_window_geom g;
	struct fd p;
	char op[80];
	int bad = 0;
	swin_window_geom_init(&g, 1, 6, 6, 6, 4, shift);
	int BW = g.B * g.nW, N = g.N, C = g.C, NH = 2, D = C / NH;
	uint8_t *keep = malloc((size_t)g.nW * N * N);
	float *mask = zeros((size_t)g.nW * N * N);
	assert_non_null(keep);
	op_shift_keep_mask(keep, &g);
	op_shift_mask_bias(mask, keep, (size_t)g.nW * N * N);
	struct attn d = { BW, g.nW, NH, N, C, (float)(1.0 / sqrt((double)D)), shift ? keep : NULL };
	size_t n = (size_t)BW * N * C, nb = (size_t)NH * N * N;
	fd_init(&p, attention_ref, &d, 3 * n + nb, n, -1.5, 1.5);
	fd_run(&p);
	float *qs = zeros(n), *av = zeros(n), *dqkv = zeros(3 * n), *dbias = zeros(nb);
	float *scratch = zeros(2 * op_window_attention_backward_scratch(N, D, NH));
	float *fscratch = zeros(2 * op_window_attention_scratch(N, D));
	float *dq = zeros(n), *dk = zeros(n), *dv = zeros(n);
	for (size_t i = 0; i < n; i++)
		qs[i] = p.xf[i] * d.q_scale;
	for (int t = 0; t < 2; t++) {
		const struct swin_kernels *kk = tables[t];
		memset(dqkv, 0, 3 * n * sizeof(float));
		memset(dbias, 0, nb * sizeof(float));
		op_window_attention_forward(av, fscratch, qs, p.xf + n, p.xf + 2 * n, C,
					    p.xf + 3 * n, shift ? mask : NULL, BW, g.nW, NH, N, C,
					    kk, 2);
		op_window_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, 3 * C, dbias, scratch,
					     p.gf, qs, p.xf + n, p.xf + 2 * n, C, p.xf + 3 * n,
					     shift ? mask : NULL, d.q_scale, BW, g.nW, NH, N, C, kk, 2);
		for (size_t r = 0; r < (size_t)BW * N; r++)
			for (int ch = 0; ch < C; ch++) {
				dq[r * C + ch] = dqkv[r * 3 * C + ch];
				dk[r * C + ch] = dqkv[r * 3 * C + C + ch];
				dv[r * C + ch] = dqkv[r * 3 * C + 2 * C + ch];
			}
		snprintf(op, sizeof(op), "window attention (shift %d, %s)", shift, table_names[t]);
		bad += check_forward(op, &p, av);
		bad += check(op, "dq", dq, p.grad, n, GRAD_TOL);
		bad += check(op, "dk", dk, p.grad + n, n, GRAD_TOL);
		bad += check(op, "dv", dv, p.grad + 2 * n, n, GRAD_TOL);
		bad += check(op, "dbias", dbias, p.grad + 3 * n, nb, GRAD_TOL);
	}
	free(keep);
	free(mask);
	free(qs);
	free(av);
	free(dqkv);
	free(dbias);
	free(scratch);
	free(fscratch);
	free(dq);
	free(dk);
	free(dv);
	fd_free(&p);
	return bad;
}

static void test_window_attention(void **state)
{
	(void)state;
	assert_int_equal(check_fused_attention(0) + check_fused_attention(2), 0);
}

/*
 * The decomposed attention kernel (every point float): the forward runs the
 * step ops, the backward op_attention_steps_backward; the twin is the same
 * attention with q already scaled.
 */
static int check_steps_attention(int shift)
{
	struct swin_window_geom g;
	struct fd p;
	char op[80];
	int bad = 0;
	swin_window_geom_init(&g, 1, 6, 6, 6, 4, shift);
	int BW = g.B * g.nW, N = g.N, C = g.C, NH = 3, D = C / NH, nW = g.nW;
	const struct swin_kernels *kk = tables[0];
	uint8_t *keep = malloc((size_t)nW * N * N);
	assert_non_null(keep);
	op_shift_keep_mask(keep, &g);
	const uint8_t *kp = shift ? keep : NULL;
	struct attn d = { BW, nW, NH, N, C, 1.0f, kp };
	size_t n = (size_t)BW * N * C, nb = (size_t)NH * N * N, att = (size_t)BW * NH * N * N;
	size_t rows = (size_t)BW * NH * N;
	fd_init(&p, attention_ref, &d, 3 * n + nb, n, -1.5, 1.5);
	fd_run(&p);
	const float *q = p.xf, *k = p.xf + n, *v = p.xf + 2 * n, *bias = p.xf + 3 * n;
	float *qk = zeros(att), *lg = zeros(att), *sm = zeros(att), *ex = zeros(att);
	float *at = zeros(att), *sum = zeros(rows), *rc = zeros(rows), *av = zeros(n);
	float *qks = zeros(2 * attn_qk_scratch(N, D));
	op_attn_qk(qk, qks, q, k, BW, NH, N, C, kk, 2);
	op_add_bias_heads(lg, qk, bias, BW, NH, N, 2);
	op_softmax_sub_max(sm, lg, kp, BW, nW, NH, N, 2);
	op_softmax_exp(ex, sm, kp, BW, nW, NH, N, 2);
	op_row_sum(sum, ex, rows, N, 2);
	op_reciprocal(rc, sum, rows, 2);
	op_row_scale(at, ex, rc, (int)rows, N, 2);
	op_attn_av(av, at, v, BW, NH, N, C, kk, 2);
	float *dq = zeros(n), *dk = zeros(n), *dv = zeros(n), *dbias = zeros(nb);
	float *scratch = zeros(2 * op_attention_steps_backward_scratch(N, D, NH));
	struct fq_bwd fq[AT_POINTS];
	double acc[AT_POINTS] = { 0 };
	memset(fq, 0, sizeof(fq));
	op_attention_steps_backward(dq, dk, dv, dbias, acc, p.gf, q, k, v, lg, ex, ex, sum, rc,
				    at, kp, fq, scratch, BW, nW, NH, N, C, kk, 2);
	snprintf(op, sizeof(op), "attention steps (shift %d)", shift);
	bad += check_forward(op, &p, av);
	bad += check(op, "dq_scaled", dq, p.grad, n, GRAD_TOL);
	bad += check(op, "dk", dk, p.grad + n, n, GRAD_TOL);
	bad += check(op, "dv", dv, p.grad + 2 * n, n, GRAD_TOL);
	bad += check(op, "dbias", dbias, p.grad + 3 * n, nb, GRAD_TOL);
	free(keep);
	free(qk);
	free(lg);
	free(sm);
	free(ex);
	free(at);
	free(sum);
	free(rc);
	free(av);
	free(qks);
	free(dq);
	free(dk);
	free(dv);
	free(dbias);
	free(scratch);
	fd_free(&p);
	return bad;
}

static void test_attention_steps(void **state)
{
	(void)state;
	assert_int_equal(check_steps_attention(0) + check_steps_attention(2), 0);
}

/* ---- elementwise and row ops ---- */

static void softmax_ref(const void *c, const double *x, double *y)
{
	const struct rows *d = c;
	for (int i = 0; i < d->M; i++) {
		double mx = -INFINITY, s = 0;
		for (int j = 0; j < d->C; j++)
			mx = fmax(mx, x[i * d->C + j]);
		for (int j = 0; j < d->C; j++)
			s += exp(x[i * d->C + j] - mx);
		for (int j = 0; j < d->C; j++)
			y[i * d->C + j] = exp(x[i * d->C + j] - mx) / s;
	}
}

static void gelu_ref(const void *c, const double *x, double *y)
{
	const struct rows *d = c;
	for (int i = 0; i < d->M * d->C; i++)
		y[i] = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
}

static void test_softmax_gelu(void **state)
{
	struct rows d = { 5, 23 };
	struct fd p;
	int bad = 0;
	size_t n = 5 * 23;
	(void)state;
	fd_init(&p, softmax_ref, &d, n, n, -3, 3);
	fd_run(&p);
	float *y = zeros(n), *dx = zeros(n);
	for (int i = 0; i < d.M; i++) {
		double s = 0;
		for (int j = 0; j < d.C; j++)
			s += exp((double)p.xf[i * d.C + j]);
		for (int j = 0; j < d.C; j++)
			y[i * d.C + j] = (float)(exp((double)p.xf[i * d.C + j]) / s);
	}
	op_softmax_backward(dx, p.gf, y, 5, 23, 2);
	bad += check("softmax", "dx", dx, p.grad, n, GRAD_TOL);
	fd_free(&p);

	/* GELU over [-6, 6]: both tails and the curved middle, and around 0
	 * where the backward switches from y / x to its series */
	fd_init(&p, gelu_ref, &d, n, n, -6, 6);
	fd_set_input(&p, 0, 0.0f);
	fd_set_input(&p, 1, 9.9e-4f);
	fd_set_input(&p, 2, -1.01e-3f);
	fd_set_input(&p, 3, 2e-6f);
	fd_run(&p);
	memset(dx, 0, n * sizeof(float));
	op_gelu_forward(y, p.xf, n, 2);
	op_gelu_backward(dx, p.gf, p.xf, y, n, 2);
	bad += check_forward("gelu (exact erf)", &p, y);
	bad += check("gelu (exact erf)", "dx", dx, p.grad, n, GRAD_TOL);
	memcpy(dx, p.gf, n * sizeof(float));
	op_gelu_backward_inplace(dx, p.xf, y, n, 2);
	bad += check("gelu (in place)", "dx", dx, p.grad, n, GRAD_TOL);
	free(y);
	free(dx);
	fd_free(&p);
	assert_int_equal(bad, 0);
}

struct merge { int B, H, W, C; };

static void merge_ref(const void *c, const double *x, double *y)
{
	const struct merge *d = c;
	int Ho = (d->H + 1) / 2, Wo = (d->W + 1) / 2;
	static const int dy[4] = { 0, 1, 0, 1 }, dx[4] = { 0, 0, 1, 1 };
	for (int b = 0; b < d->B; b++)
		for (int oy = 0; oy < Ho; oy++)
			for (int ox = 0; ox < Wo; ox++)
				for (int part = 0; part < 4; part++)
					for (int ch = 0; ch < d->C; ch++) {
						int yy = 2 * oy + dy[part], xx = 2 * ox + dx[part];
						y[(((size_t)(b * Ho + oy) * Wo + ox) * 4 + part) * d->C + ch] =
							yy < d->H && xx < d->W ?
							x[(((size_t)b * d->H + yy) * d->W + xx) * d->C + ch] : 0.0;
					}
}

struct pool { int B, T, C; };

static void pool_ref(const void *c, const double *x, double *y)
{
	const struct pool *d = c;
	for (int b = 0; b < d->B; b++)
		for (int ch = 0; ch < d->C; ch++) {
			double s = 0;
			for (int t = 0; t < d->T; t++)
				s += x[((size_t)b * d->T + t) * d->C + ch];
			y[b * d->C + ch] = s / d->T;
		}
}

static void test_merge_pool(void **state)
{
	struct merge d = { 2, 5, 5, 3 };  /* odd: padded merge */
	struct fd p;
	int bad = 0;
	(void)state;
	size_t nx = 2 * 25 * 3, ny = 2 * 9 * 4 * 3;
	fd_init(&p, merge_ref, &d, nx, ny, -1, 1);
	fd_run(&p);
	float *y = zeros(ny), *dx = zeros(nx);
	op_merge_gather(y, p.xf, 2, 5, 5, 3, 2);
	op_merge_gather_backward(dx, p.gf, 2, 5, 5, 3, 2);
	bad += check_forward("patch merge gather 5x5", &p, y);
	bad += check("patch merge gather 5x5", "dx", dx, p.grad, nx, GRAD_TOL);
	free(y);
	free(dx);
	fd_free(&p);

	struct pool pd = { 3, 7, 5 };
	fd_init(&p, pool_ref, &pd, 3 * 7 * 5, 15, -1, 1);
	fd_run(&p);
	y = zeros(15);
	dx = zeros(105);
	op_avgpool_forward(y, p.xf, 3, 7, 5);
	op_avgpool_backward(dx, p.gf, 3, 7, 5, 2);
	bad += check_forward("average pool", &p, y);
	bad += check("average pool", "dx", dx, p.grad, 105, GRAD_TOL);
	free(y);
	free(dx);
	fd_free(&p);
	assert_int_equal(bad, 0);
}

/* ---- decomposed steps ---- */

enum step { ST_MEAN, ST_SUB, ST_SQUARE, ST_RSQRT, ST_ROWSCALE, ST_AFFINE, ST_ROWSUM,
	    ST_RECIP, ST_EXP, ST_SCALE, ST_ADD };

struct stepd { enum step s; int M, C; };

/* Inputs per step: MEAN x(M,C); SUB [x(M,C) | mean(M)]; SQUARE x; RSQRT var(M);
 * ROWSCALE [x(M,C) | s(M)]; AFFINE [x(M,C) | w(C) | b(C)]; ROWSUM x(M,C);
 * RECIP x(M); EXP x(M,C) (e = exp(x)); SCALE x(M,C) * 0.37; ADD [a | b] */
static void step_ref(const void *c, const double *x, double *y)
{
	const struct stepd *d = c;
	int M = d->M, C = d->C;
	size_t MC = (size_t)M * C;
	switch (d->s) {
	case ST_MEAN:
	case ST_ROWSUM:
		for (int i = 0; i < M; i++) {
			double s = 0;
			for (int j = 0; j < C; j++)
				s += x[i * C + j];
			y[i] = d->s == ST_MEAN ? s / C : s;
		}
		break;
	case ST_SUB:
		for (size_t i = 0; i < MC; i++)
			y[i] = x[i] - x[MC + i / C];
		break;
	case ST_SQUARE:
		for (size_t i = 0; i < MC; i++)
			y[i] = x[i] * x[i];
		break;
	case ST_RSQRT:
		for (int i = 0; i < M; i++)
			y[i] = 1.0 / sqrt(x[i] + (double)SWIN_LN_EPS);
		break;
	case ST_ROWSCALE:
		for (size_t i = 0; i < MC; i++)
			y[i] = x[i] * x[MC + i / C];
		break;
	case ST_AFFINE:
		for (size_t i = 0; i < MC; i++)
			y[i] = x[i] * x[MC + i % C] + x[MC + C + i % C];
		break;
	case ST_RECIP:
		for (int i = 0; i < M; i++)
			y[i] = 1.0 / x[i];
		break;
	case ST_EXP:
		for (size_t i = 0; i < MC; i++)
			y[i] = exp(x[i]);
		break;
	case ST_SCALE:
		for (size_t i = 0; i < MC; i++)
			y[i] = 0.37 * x[i];
		break;
	case ST_ADD:
		for (size_t i = 0; i < MC; i++)
			y[i] = x[i] + x[MC + i];
		break;
	}
}

static void test_decomposed_steps(void **state)
{
	const int M = 5, C = 21;
	const size_t MC = (size_t)M * C;
	int bad = 0;
	(void)state;
	for (enum step s = ST_MEAN; s <= ST_ADD; s++) {
		struct stepd d = { s, M, C };
		struct fd p;
		size_t nx = MC, ny = MC;
		double lo = -2, hi = 2;
		const char *name = "";
		switch (s) {
		case ST_MEAN: ny = M; name = "row mean"; break;
		case ST_ROWSUM: ny = M; name = "row sum"; break;
		case ST_SUB: nx = MC + M; name = "row sub"; break;
		case ST_SQUARE: name = "square"; break;
		case ST_RSQRT: nx = ny = M; lo = 0.05; hi = 3; name = "rsqrt(var + eps)"; break;
		case ST_ROWSCALE: nx = MC + M; name = "row scale"; break;
		case ST_AFFINE: nx = MC + 2 * C; name = "affine"; break;
		case ST_RECIP: nx = ny = M; lo = 0.3; hi = 3; name = "reciprocal"; break;
		case ST_EXP: name = "softmax exp (unmasked)"; break;
		case ST_SCALE: name = "scale"; break;
		case ST_ADD: nx = 2 * MC; name = "add"; break;
		}
		fd_init(&p, step_ref, &d, nx, ny, lo, hi);
		fd_run(&p);
		float *dx = zeros(nx), *e = zeros(MC);
		const float *x = p.xf;
		switch (s) {
		case ST_MEAN: op_row_mean_backward(dx, p.gf, M, C, 2); break;
		case ST_ROWSUM: op_row_sum_backward(dx, p.gf, M, C, 2); break;
		case ST_SUB: op_row_sub_backward(dx, dx + MC, p.gf, M, C, 2); break;
		case ST_SQUARE: op_square_backward(dx, p.gf, x, MC, 2); break;
		case ST_RSQRT: op_rsqrt_eps_backward(dx, p.gf, x, M, SWIN_LN_EPS, 2); break;
		case ST_ROWSCALE: op_row_scale_backward(dx, dx + MC, p.gf, x, x + MC, M, C, 2); break;
		case ST_AFFINE:
			op_affine_backward(dx, dx + MC, dx + MC + C, p.gf, x, x + MC, M, C, 2);
			break;
		case ST_RECIP: op_reciprocal_backward(dx, p.gf, x, M, 2); break;
		case ST_EXP:
			for (size_t i = 0; i < MC; i++)
				e[i] = (float)exp((double)x[i]);
			op_softmax_exp_backward(dx, p.gf, e, MC, 2);
			break;
		case ST_SCALE: op_scale_backward(dx, p.gf, 0.37f, MC, 2); break;
		case ST_ADD: op_add_backward(dx, dx + MC, p.gf, MC, 2); break;
		}
		bad += check(name, "dx", dx, p.grad, nx, GRAD_TOL);
		free(dx);
		free(e);
		fd_free(&p);
	}
	assert_int_equal(bad, 0);
}

/* softmax sub_max with a shift mask, add_bias_heads, attn_qk, attn_av */
struct headd { int BW, nW, NH, N, C; const uint8_t *keep; int which; };

static void heads_ref(const void *c, const double *x, double *y)
{
	const struct headd *d = c;
	int N = d->N, C = d->C, D = C / d->NH;
	size_t att = (size_t)d->BW * d->NH * N * N, n = (size_t)d->BW * N * C;
	if (d->which == 0) {        /* sub_max: x (BW,NH,N,N) */
		for (size_t r = 0; r < att / N; r++) {
			const uint8_t *kr = d->keep ? d->keep + ((r / ((size_t)d->NH * N)) % d->nW * N + r % N) * N : NULL;
			double mx = -INFINITY;
			for (int j = 0; j < N; j++)
				if ((!kr || kr[j]) && x[r * N + j] > mx)
					mx = x[r * N + j];
			for (int j = 0; j < N; j++)
				y[r * N + j] = !kr || kr[j] ? x[r * N + j] - mx : 0.0;
		}
	} else if (d->which == 1) { /* add bias: [qk (BW,NH,N,N) | bias (NH,N,N)] */
		for (size_t e = 0; e < att; e++)
			y[e] = x[e] + x[att + e % ((size_t)d->NH * N * N)];
	} else if (d->which == 2) { /* qk: [q (BW,N,C) | k] */
		for (int bw = 0; bw < d->BW; bw++)
			for (int h = 0; h < d->NH; h++)
				for (int i = 0; i < N; i++)
					for (int j = 0; j < N; j++) {
						double acc = 0;
						for (int e = 0; e < D; e++)
							acc += x[((size_t)bw * N + i) * C + h * D + e] *
							       x[n + ((size_t)bw * N + j) * C + h * D + e];
						y[(((size_t)bw * d->NH + h) * N + i) * N + j] = acc;
					}
	} else {                    /* av: [attn (BW,NH,N,N) | v (BW,N,C)] */
		for (int bw = 0; bw < d->BW; bw++)
			for (int h = 0; h < d->NH; h++)
				for (int i = 0; i < N; i++)
					for (int e = 0; e < D; e++) {
						double acc = 0;
						for (int j = 0; j < N; j++)
							acc += x[(((size_t)bw * d->NH + h) * N + i) * N + j] *
							       x[att + ((size_t)bw * N + j) * C + h * D + e];
						y[((size_t)bw * N + i) * C + h * D + e] = acc;
					}
	}
}

static void test_head_steps(void **state)
{
	struct swin_window_geom g;
	int bad = 0;
	(void)state;
	swin_window_geom_init(&g, 1, 6, 6, 6, 4, 2);
	int N = g.N, NH = 2, C = 6, BW = g.nW, D = 3;
	size_t att = (size_t)BW * NH * N * N, n = (size_t)BW * N * C, nb = (size_t)NH * N * N;
	uint8_t *keep = malloc((size_t)g.nW * N * N);
	assert_non_null(keep);
	op_shift_keep_mask(keep, &g);
	float *scratch = zeros(2 * op_attn_matmul_backward_scratch(N, D));
	for (int which = 0; which < 4; which++) {
		struct headd d = { BW, g.nW, NH, N, C, keep, which };
		struct fd p;
		size_t nx = which == 0 ? att : which == 1 ? att + nb : which == 2 ? 2 * n : att + n;
		size_t ny = which == 3 ? n : att;
		fd_init(&p, heads_ref, &d, nx, ny, -1, 1);
		fd_run(&p);
		float *dx = zeros(nx);
		const char *name = "";
		if (which == 0) {
			name = "softmax sub_max (shift mask)";
			op_softmax_sub_max_backward(dx, p.gf, p.xf, keep, BW, g.nW, NH, N, 2);
		} else if (which == 1) {
			name = "add relative bias per head";
			op_add_bias_heads_backward(dx, dx + att, p.gf, BW, NH, N, 2);
		} else if (which == 2) {
			name = "attn q @ k^T";
			op_attn_qk_backward(dx, dx + n, p.gf, p.xf, p.xf + n, scratch, BW, NH, N, C,
					    tables[0], 2);
		} else {
			name = "attn attn @ v";
			op_attn_av_backward(dx, dx + att, p.gf, p.xf, p.xf + att, scratch, BW, NH, N,
					    C, tables[0], 2);
		}
		bad += check(name, "dx", dx, p.grad, nx, GRAD_TOL);
		free(dx);
		fd_free(&p);
	}
	free(keep);
	free(scratch);
	assert_int_equal(bad, 0);
}

/* The checker itself must flag a gradient that is off by 2e-5 of its max. */
static void test_checker_detects_error(void **state)
{
	double ref[3] = { 1.0, -2.0, 0.5 };
	float got[3] = { 1.0f, -2.0f, 0.5f };
	(void)state;
	assert_int_equal(check("checker", "exact", got, ref, 3, GRAD_TOL), 0);
	got[2] += 4e-5f;
	assert_int_not_equal(check("checker", "perturbed", got, ref, 3, GRAD_TOL), 0);
}

static int setup(void **state)
{
	(void)state;
	qcal_rng_seed(&rng, 1234);
	tables[0] = swin_kernels_blas();
	tables[1] = swin_kernels_naive();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checker_detects_error),
		cmocka_unit_test(test_linear),
		cmocka_unit_test(test_patch_embed),
		cmocka_unit_test(test_layernorm),
		cmocka_unit_test(test_windows),
		cmocka_unit_test(test_gathers),
		cmocka_unit_test(test_window_attention),
		cmocka_unit_test(test_attention_steps),
		cmocka_unit_test(test_softmax_gelu),
		cmocka_unit_test(test_merge_pool),
		cmocka_unit_test(test_decomposed_steps),
		cmocka_unit_test(test_head_steps),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
