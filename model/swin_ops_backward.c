/*
 * Backward kernels of Swin V1 (see swin_ops_backward.h for shapes and the
 * accumulate-into-gradients contract).
 *
 * Parallel loops split over rows, windows or column blocks so no two threads
 * write one element; weight-gradient reductions over rows run per block of
 * 16 columns with double accumulators, so they neither race nor depend on
 * the thread count.  Window-attention kernels work one (window, head) at a
 * time in per-thread tiles, using the plan's attention matmul kernels
 * (attn_qk: A @ B^T, attn_pv: A @ B); a transposed product is a transpose
 * into a tile followed by attn_pv.
 */
#include "model/swin_ops_backward.h"

#include "model/vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define COL_BLOCK 16

static inline float sum16(const float *x, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] += x[i + j];
	for (; i < n; i++)
		acc[0] += x[i];
	for (int j = 8; j > 0; j /= 2)
		for (int l = 0; l < j; l++)
			acc[l] += acc[l + j];
	return acc[0];
}

static inline float dot16(const float *a, const float *b, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		acc[0] += a[i] * b[i];
	for (int j = 8; j > 0; j /= 2)
		for (int l = 0; l < j; l++)
			acc[l] += acc[l + j];
	return acc[0];
}

static inline size_t pad16(size_t n)
{
	return (n + 15) / 16 * 16;
}

/* t (N, ldt) = a^T for a (N, N; row stride lda). */
static void transpose_tile(float *t, int ldt, const float *a, int lda, int N)
{
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			t[(size_t)j * ldt + i] = a[(size_t)i * lda + j];
}

/* dst (N, D; ld) += s * src (N, D; dense) */
static void add_tile(float *dst, int ld, const float *src, int N, int D, float s)
{
	for (int i = 0; i < N; i++)
		for (int d = 0; d < D; d++)
			dst[(size_t)i * ld + d] += s * src[(size_t)i * D + d];
}

/*
 * Column reductions (bias and affine parameter gradients) run per block of
 * COL_BLOCK columns, so threads never share an output, accumulating in
 * double.  The LayerNorm kernels gather theirs in their row pass instead.
 */
void op_bias_backward(float *db, const float *dout, int M, int N, int threads)
{
	int blocks = (N + COL_BLOCK - 1) / COL_BLOCK;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int bk = 0; bk < blocks; bk++) {
		int c0 = bk * COL_BLOCK, w = N - c0 < COL_BLOCK ? N - c0 : COL_BLOCK;
		double acc[COL_BLOCK] = { 0 };
		for (int i = 0; i < M; i++) {
			const float *r = dout + (size_t)i * N + c0;
			for (int j = 0; j < w; j++)
				acc[j] += r[j];
		}
		for (int j = 0; j < w; j++)
			db[c0 + j] += (float)acc[j];
	}
}

void op_linear_backward(float *din, float *dw, float *db, const float *dout,
			const float *in, const float *w, int M, int K, int N,
			const struct swin_kernels *k, int threads)
{
	if (din)
		k->gemm(false, false, M, K, N, 1.0f, dout, N, w, K, 1.0f, din, K, threads);
	if (dw)
		k->gemm(true, false, N, K, M, 1.0f, dout, N, in, K, 1.0f, dw, K, threads);
	if (db)
		op_bias_backward(db, dout, M, N, threads);
}

void op_patch_embed_backward(float *din, float *dw, float *db, float *dcols,
			     const float *dout, const float *cols, const float *w,
			     int B, int Cin, int H, int W, int P, int E,
			     const struct swin_kernels *k, int threads)
{
	int Ho = H / P, Wo = W / P, K = Cin * P * P;
	long rows = (long)B * Ho * Wo;

	op_linear_backward(NULL, dw, db, dout, cols, w, (int)rows, K, E, k, threads);
	if (!din)
		return;
	k->gemm(false, false, (int)rows, K, E, 1.0f, dout, E, w, K, 0.0f, dcols, K,
		threads);
	/* col2im: patches do not overlap, so rows write disjoint pixels */
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		int bi = (int)(r / (Ho * Wo)), t = (int)(r % (Ho * Wo));
		int oy = t / Wo, ox = t % Wo;
		const float *col = dcols + r * K;
		for (int c = 0; c < Cin; c++)
			for (int ky = 0; ky < P; ky++) {
				float *dst = din + (((long)bi * Cin + c) * H + oy * P + ky) * W + ox * P;
				const float *src = col + (c * P + ky) * P;
				for (int kx = 0; kx < P; kx++)
					dst[kx] += src[kx];
			}
	}
}

/*
 * Per-thread LayerNorm parameter partials: float sums over up to FOLD_ROWS
 * rows (vector adds), folded into double sums (exact enough over any M).
 * Layout per thread: dw, db as 2C doubles, then 2C floats.
 */
#define FOLD_ROWS 64

struct ln_partials {
	double *dw, *db;
	float *fw, *fb;
	int rows;
};

static struct ln_partials ln_partials_at(float *base, int C)
{
	struct ln_partials p;

	p.dw = (double *)base;
	p.db = p.dw + C;
	p.fw = base + 4 * (size_t)C;
	p.fb = p.fw + C;
	p.rows = 0;
	return p;
}

static void ln_partials_fold(struct ln_partials *p, int C)
{
	for (int j = 0; j < C; j++) {
		p->dw[j] += p->fw[j];
		p->db[j] += p->fb[j];
		p->fw[j] = 0.0f;
		p->fb[j] = 0.0f;
	}
	p->rows = 0;
}

size_t op_layernorm_backward_scratch(int C)
{
	return 6 * (size_t)C;
}

/* Zero every thread slot's partials (6C floats each). */
static void zero_partials(float *scratch, size_t per_thread, int C, int threads)
{
	for (int t = 0; t < threads; t++)
		memset(scratch + (size_t)t * per_thread, 0, 6 * (size_t)C * sizeof(float));
}

/* dw, db (C) += the per-thread partials (folded), summed in thread order. */
static void reduce_partials(float *dw, float *db, const float *scratch,
			    size_t per_thread, int C, int threads)
{
	for (int j = 0; j < C; j++) {
		double sw = 0.0, sb = 0.0;
		for (int t = 0; t < threads; t++) {
			const double *p = (const double *)(scratch + (size_t)t * per_thread);
			sw += p[j];
			sb += p[C + j];
		}
		if (dw)
			dw[j] += (float)sw;
		if (db)
			db[j] += (float)sb;
	}
}

void op_layernorm_backward(float *din, float *dw, float *db, const float *dout,
			   const float *in, const float *mean, const float *rstd,
			   const float *w, float *scratch, int M, int C, int threads)
{
	size_t per_thread = op_layernorm_backward_scratch(C);

	zero_partials(scratch, per_thread, C, threads);
	#pragma omp parallel num_threads(threads)
	{
		struct ln_partials part = ln_partials_at(scratch + (size_t)omp_get_thread_num() *
							 per_thread, C);
		float *pw = part.fw, *pb = part.fb;
		#pragma omp for schedule(static)
		for (int i = 0; i < M; i++) {
			const float *x = in + (size_t)i * C, *g = dout + (size_t)i * C;
			float *dx = din + (size_t)i * C;
			float m = mean[i], r = rstd[i];
			float a[16] = { 0 }, b[16] = { 0 };
			/* a = sum dn, b = sum dn * n with dn = g * w, n = (x - m) * r;
			 * the parameter partials on the way */
			for (int j = 0; j < C; j++) {
				float n = (x[j] - m) * r, dn = g[j] * w[j];
				a[j & 15] += dn;
				b[j & 15] += dn * n;
				pw[j] += g[j] * n;
				pb[j] += g[j];
			}
			if (++part.rows == FOLD_ROWS)
				ln_partials_fold(&part, C);
			for (int s = 8; s > 0; s /= 2)
				for (int l = 0; l < s; l++) {
					a[l] += a[l + s];
					b[l] += b[l + s];
				}
			float ma = a[0] / (float)C, mb = b[0] / (float)C;
			for (int j = 0; j < C; j++) {
				float n = (x[j] - m) * r;
				dx[j] += r * ((g[j] * w[j] - ma) - n * mb);
			}
		}
		ln_partials_fold(&part, C);
	}
	reduce_partials(dw, db, scratch, per_thread, C, threads);
}

void op_window_partition_backward(float *dx, const float *dxw,
				  const struct swin_window_geom *g, int threads)
{
	long rows = (long)g->B * g->H;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		int b = (int)(r / g->H), h = (int)(r % g->H);
		int hr = (h - g->shift + g->Hp) % g->Hp;
		for (int w = 0; w < g->W; w++) {
			int wr = (w - g->shift + g->Wp) % g->Wp;
			long win = (long)b * g->nW + (hr / g->ws) * g->nWw + wr / g->ws;
			const float *src = dxw + (win * g->N + (hr % g->ws) * g->ws + wr % g->ws) * g->C;
			float *dst = dx + (r * g->W + w) * g->C;
			for (int c = 0; c < g->C; c++)
				dst[c] += src[c];
		}
	}
}

void op_window_reverse_add_backward(float *dres, float *dy, const float *dout,
				    const struct swin_window_geom *g, int threads)
{
	long windows = (long)g->B * g->nW;

	if (dres)
		op_add_backward(dres, NULL, dout, (size_t)g->B * g->H * g->W * g->C, threads);
	/* the token a window position came from, as op_window_partition maps it */
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long bw = 0; bw < windows; bw++) {
		int b = (int)(bw / g->nW), w = (int)(bw % g->nW);
		int wy = w / g->nWw, wx = w % g->nWw;
		for (int iy = 0; iy < g->ws; iy++) {
			int sh = (wy * g->ws + iy + g->shift) % g->Hp;
			if (sh >= g->H)
				continue;
			for (int ix = 0; ix < g->ws; ix++) {
				int sw = (wx * g->ws + ix + g->shift) % g->Wp;
				if (sw >= g->W)
					continue;
				float *dst = dy + (bw * g->N + iy * g->ws + ix) * g->C;
				const float *src = dout + (((long)b * g->H + sh) * g->W + sw) * g->C;
				for (int c = 0; c < g->C; c++)
					dst[c] += src[c];
			}
		}
	}
}

void op_gather_rel_bias_backward(float *dtable, const float *dbias,
				 const int32_t *index, int NH, int N)
{
	for (int h = 0; h < NH; h++)
		for (int ij = 0; ij < N * N; ij++)
			dtable[(long)index[ij] * NH + h] += dbias[(long)h * N * N + ij];
}

void op_split_qkv_backward(float *dqkv, const float *dq, const float *dk,
			   const float *dv, size_t rows, int C, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t r = 0; r < rows; r++) {
		float *d = dqkv + r * 3 * C;
		for (int c = 0; c < C; c++) {
			d[c] += dq[r * C + c];
			d[C + c] += dk[r * C + c];
			d[2 * C + c] += dv[r * C + c];
		}
	}
}

/* Per-thread layout of the attention backward scratch. */
struct attn_tiles {
	float *a, *b, *t;  /* (N, NP) tiles */
	float *tmp;        /* (N, D) */
	float *qk;         /* attn_qk_scratch(N, D) */
	float *dbias;      /* (NH, N, N) partial sums, or NULL */
};

static size_t attn_tiles_size(int N, int D, int NH)
{
	size_t NP = (size_t)attn_padded_n(N);
	return 3 * pad16((size_t)N * NP) + pad16((size_t)N * D) +
	       pad16(attn_qk_scratch(N, D)) + pad16((size_t)NH * N * N);
}

static struct attn_tiles attn_tiles_at(float *base, int N, int D, int NH)
{
	size_t NP = (size_t)attn_padded_n(N), tile = pad16((size_t)N * NP);
	struct attn_tiles t;

	t.a = base;
	t.b = base + tile;
	t.t = base + 2 * tile;
	t.tmp = base + 3 * tile;
	t.qk = t.tmp + pad16((size_t)N * D);
	t.dbias = NH > 0 ? t.qk + pad16(attn_qk_scratch(N, D)) : NULL;
	return t;
}

size_t op_window_attention_backward_scratch(int N, int D, int NH)
{
	return attn_tiles_size(N, D, NH);
}

/* Sum the per-thread bias partials into dbias in thread order. */
static void reduce_dbias(float *dbias, float *scratch, size_t per_thread,
			 int N, int D, int NH, int threads)
{
	size_t nn = (size_t)NH * N * N;

	for (int t = 0; t < threads; t++) {
		const float *part = attn_tiles_at(scratch + (size_t)t * per_thread, N, D, NH).dbias;
		for (size_t i = 0; i < nn; i++)
			dbias[i] += part[i];
	}
}

static void zero_dbias(float *scratch, size_t per_thread, int N, int D, int NH,
		       int threads)
{
	for (int t = 0; t < threads; t++)
		memset(attn_tiles_at(scratch + (size_t)t * per_thread, N, D, NH).dbias, 0,
		       (size_t)NH * N * N * sizeof(float));
}

static inline float max_kept(const float *x, const uint8_t *kr, int N, int *arg)
{
	float mx = -INFINITY;
	int am = -1;

	for (int j = 0; j < N; j++)
		if ((!kr || kr[j]) && (am < 0 || x[j] > mx)) {
			mx = x[j];
			am = j;
		}
	*arg = am;
	return mx;
}

void op_window_attention_backward(float *dq, float *dk, float *dv, int ld_d,
				  float *dbias, float *scratch, const float *dav,
				  const float *q, const float *k, const float *v,
				  int ld, const float *bias, const float *mask_bias,
				  float q_scale, int BW, int nW, int NH, int N,
				  int C, const struct swin_kernels *kk, int threads)
{
	int D = C / NH, NP = attn_padded_n(N);
	long pairs = (long)BW * NH;
	size_t per_thread = op_window_attention_backward_scratch(N, D, NH);

	zero_dbias(scratch, per_thread, N, D, NH, threads);
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long p = 0; p < pairs; p++) {
		int bw = (int)(p / NH), h = (int)(p % NH);
		struct attn_tiles t = attn_tiles_at(scratch + (size_t)omp_get_thread_num() * per_thread,
						    N, D, NH);
		const float *qh = q + (long)bw * N * ld + h * D;
		const float *kh = k + (long)bw * N * ld + h * D;
		const float *vh = v + (long)bw * N * ld + h * D;
		const float *dah = dav + (long)bw * N * C + h * D;
		const float *bh = bias + (long)h * N * N;
		const float *mb = mask_bias ? mask_bias + (long)(bw % nW) * N * N : NULL;
		float *P = t.a, *dP = t.b;

		/* P = softmax(q k^T + bias + mask), as the forward computed it */
		kk->attn_qk(P, NP, qh, ld, kh, ld, N, D, 1.0f, t.qk);
		for (int i = 0; i < N; i++) {
			float *si = P + (size_t)i * NP;
			const float *bi = bh + (size_t)i * N;
			if (mb) {
				const float *mi = mb + (size_t)i * N;
				for (int j = 0; j < N; j++)
					si[j] = (si[j] + bi[j]) + mi[j];
			} else {
				for (int j = 0; j < N; j++)
					si[j] += bi[j];
			}
			int am;
			float mx = max_kept(si, NULL, N, &am);
			for (int j = 0; j < N; j++)
				si[j] = vm_expf(si[j] - mx);
			float r = 1.0f / sum16(si, N);
			for (int j = 0; j < N; j++)
				si[j] *= r;
		}
		/* dv_h += P^T @ dav_h */
		transpose_tile(t.t, NP, P, NP, N);
		kk->attn_pv(t.tmp, D, t.t, NP, dah, C, N, D);
		add_tile(dv + (long)bw * N * ld_d + h * D, ld_d, t.tmp, N, D, 1.0f);
		/* dP = dav_h @ v_h^T; dS = P * (dP - rowsum(dP * P)) in dP */
		kk->attn_qk(dP, NP, dah, C, vh, ld, N, D, 1.0f, t.qk);
		for (int i = 0; i < N; i++) {
			float *pi = P + (size_t)i * NP, *gi = dP + (size_t)i * NP;
			float s = dot16(pi, gi, N);
			float *db = t.dbias + (size_t)h * N * N + (size_t)i * N;
			for (int j = 0; j < N; j++) {
				gi[j] = pi[j] * (gi[j] - s);
				db[j] += gi[j];
			}
		}
		/* dq_h += q_scale * dS @ k_h;  dk_h += dS^T @ q_h */
		kk->attn_pv(t.tmp, D, dP, NP, kh, ld, N, D);
		add_tile(dq + (long)bw * N * ld_d + h * D, ld_d, t.tmp, N, D, q_scale);
		transpose_tile(t.t, NP, dP, NP, N);
		kk->attn_pv(t.tmp, D, t.t, NP, qh, ld, N, D);
		add_tile(dk + (long)bw * N * ld_d + h * D, ld_d, t.tmp, N, D, 1.0f);
	}
	if (dbias)
		reduce_dbias(dbias, scratch, per_thread, N, D, NH, threads);
}

void op_softmax_backward(float *dx, const float *dy, const float *y,
			 size_t rows, int N, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t r = 0; r < rows; r++) {
		const float *yr = y + r * N, *gr = dy + r * N;
		float s = dot16(yr, gr, N);
		for (int j = 0; j < N; j++)
			dx[r * N + j] += yr[j] * (gr[j] - s);
	}
}

/*
 * GELU'(x) = Phi(x) + x phi(x).  Phi(x) = GELU(x) / x comes from the
 * forward's own output y (exact to its rounding), so only phi needs an exp;
 * near 0, where y / x loses precision, Phi(x) = 1/2 + x phi(0) + O(x^3).
 */
static inline float gelu_grad(float x, float y)
{
	const float inv_sqrt_2pi = 0.3989422804014327f;
	float phi = inv_sqrt_2pi * vm_expf(-0.5f * x * x);
	float cdf = fabsf(x) < 1e-3f ? 0.5f + inv_sqrt_2pi * x : y / x;
	return cdf + x * phi;
}

void op_gelu_backward(float *din, const float *dout, const float *in,
		      const float *out, size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		din[i] += dout[i] * gelu_grad(in[i], out[i]);
}

void op_gelu_backward_inplace(float *d, const float *in, const float *out,
			      size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		d[i] *= gelu_grad(in[i], out[i]);
}

void op_merge_gather_backward(float *din, const float *dout, int B, int H,
			      int W, int C, int threads)
{
	int Ho = (H + 1) / 2, Wo = (W + 1) / 2;
	long rows = (long)B * Ho * Wo;
	static const int dy[4] = { 0, 1, 0, 1 }, dx[4] = { 0, 0, 1, 1 };

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		int b = (int)(r / ((long)Ho * Wo)), t = (int)(r % ((long)Ho * Wo));
		int oy = t / Wo, ox = t % Wo;
		for (int part = 0; part < 4; part++) {
			int y = 2 * oy + dy[part], x = 2 * ox + dx[part];
			if (y >= H || x >= W)
				continue;
			const float *src = dout + (r * 4 + part) * C;
			float *dst = din + (((long)b * H + y) * W + x) * C;
			for (int c = 0; c < C; c++)
				dst[c] += src[c];
		}
	}
}

void op_avgpool_backward(float *din, const float *dout, int B, int T, int C,
			 int threads)
{
	float inv = 1.0f / (float)T;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < (long)B * T; r++) {
		const float *g = dout + (r / T) * C;
		for (int c = 0; c < C; c++)
			din[r * C + c] += g[c] * inv;
	}
}

void op_add_backward(float *da, float *db, const float *dout, size_t n,
		     int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++) {
		if (da)
			da[i] += dout[i];
		if (db)
			db[i] += dout[i];
	}
}

void op_scale_backward(float *din, const float *dout, float s, size_t n,
		       int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		din[i] += s * dout[i];
}

/* ---- decomposed steps ---- */

void op_row_mean_backward(float *din, const float *dmean, int M, int C,
			  int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++) {
		float g = dmean[i] / (float)C;
		for (int j = 0; j < C; j++)
			din[(size_t)i * C + j] += g;
	}
}

void op_row_sub_backward(float *din, float *dmean, const float *dcentered,
			 int M, int C, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++) {
		const float *g = dcentered + (size_t)i * C;
		if (din)
			for (int j = 0; j < C; j++)
				din[(size_t)i * C + j] += g[j];
		if (dmean)
			dmean[i] -= sum16(g, C);
	}
}

void op_square_backward(float *din, const float *dout, const float *in,
			size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		din[i] += 2.0f * in[i] * dout[i];
}

void op_rsqrt_eps_backward(float *dvar, const float *drstd, const float *var,
			   size_t n, float eps, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++) {
		float r = 1.0f / sqrtf(var[i] + eps);
		dvar[i] += drstd[i] * (-0.5f * r * r * r);
	}
}

void op_row_scale_backward(float *din, float *ds, const float *dout,
			   const float *in, const float *s, int M, int C,
			   int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++) {
		const float *g = dout + (size_t)i * C;
		if (din)
			for (int j = 0; j < C; j++)
				din[(size_t)i * C + j] += g[j] * s[i];
		if (ds)
			ds[i] += dot16(g, in + (size_t)i * C, C);
	}
}

void op_affine_backward(float *din, float *dw, float *db, const float *dout,
			const float *in, const float *w, int M, int C,
			int threads)
{
	int blocks = (C + COL_BLOCK - 1) / COL_BLOCK;

	if (din) {
		#pragma omp parallel for num_threads(threads) schedule(static)
		for (int i = 0; i < M; i++)
			for (int j = 0; j < C; j++)
				din[(size_t)i * C + j] += dout[(size_t)i * C + j] * w[j];
	}
	if (!dw && !db)
		return;
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int bk = 0; bk < blocks; bk++) {
		int c0 = bk * COL_BLOCK, wd = C - c0 < COL_BLOCK ? C - c0 : COL_BLOCK;
		double aw[COL_BLOCK] = { 0 }, ab[COL_BLOCK] = { 0 };
		for (int i = 0; i < M; i++) {
			const float *g = dout + (size_t)i * C + c0, *x = in + (size_t)i * C + c0;
			for (int j = 0; j < wd; j++) {
				aw[j] += (double)(g[j] * x[j]);
				ab[j] += g[j];
			}
		}
		for (int j = 0; j < wd; j++) {
			if (dw)
				dw[c0 + j] += (float)aw[j];
			if (db)
				db[c0 + j] += (float)ab[j];
		}
	}
}

void op_row_sum_backward(float *din, const float *dsum, size_t rows, int N,
			 int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t r = 0; r < rows; r++)
		for (int j = 0; j < N; j++)
			din[r * N + j] += dsum[r];
}

void op_reciprocal_backward(float *din, const float *dout, const float *in,
			    size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++) {
		float r = 1.0f / in[i];
		din[i] += -dout[i] * r * r;
	}
}

static inline const uint8_t *keep_row(const uint8_t *keep, long r, int nW,
				      int NH, int N)
{
	return keep ? keep + ((r / ((long)NH * N)) % nW * N + r % N) * N : NULL;
}

void op_softmax_sub_max_backward(float *dx, const float *dsub, const float *x,
				 const uint8_t *keep, int BW, int nW, int NH,
				 int N, int threads)
{
	long rows = (long)BW * NH * N;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		const uint8_t *kr = keep_row(keep, r, nW, NH, N);
		const float *g = dsub + r * N;
		float tot = 0.0f;
		int am;
		max_kept(x + r * N, kr, N, &am);
		for (int j = 0; j < N; j++)
			if (!kr || kr[j]) {
				dx[r * N + j] += g[j];
				tot += g[j];
			}
		if (am >= 0)
			dx[r * N + am] -= tot;
	}
}

void op_softmax_exp_backward(float *dsub, const float *dexp, const float *e,
			     size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		dsub[i] += dexp[i] * e[i];
}

void op_add_bias_heads_backward(float *dqk, float *dbias, const float *dlogits,
				int BW, int NH, int N, int threads)
{
	long nn = (long)N * N;

	if (dqk)
		op_add_backward(dqk, NULL, dlogits, (size_t)BW * NH * nn, threads);
	if (!dbias)
		return;
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long e = 0; e < NH * nn; e++) {
		long h = e / nn, ij = e % nn;
		double acc = 0.0;
		for (long bw = 0; bw < BW; bw++)
			acc += dlogits[(bw * NH + h) * nn + ij];
		dbias[e] += (float)acc;
	}
}

size_t op_attn_matmul_backward_scratch(int N, int D)
{
	return attn_tiles_size(N, D, 0);
}

void op_attn_qk_backward(float *dq, float *dk, const float *dqk, const float *q,
			 const float *k, float *scratch, int BW, int NH, int N,
			 int C, const struct swin_kernels *kk, int threads)
{
	int D = C / NH, NP = attn_padded_n(N);
	long pairs = (long)BW * NH;
	size_t per_thread = op_attn_matmul_backward_scratch(N, D);

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long p = 0; p < pairs; p++) {
		int bw = (int)(p / NH), h = (int)(p % NH);
		struct attn_tiles t = attn_tiles_at(scratch + (size_t)omp_get_thread_num() * per_thread,
						    N, D, 0);
		long off = (long)bw * N * C + h * D;
		const float *g = dqk + p * N * N;
		kk->attn_pv(t.tmp, D, g, N, k + off, C, N, D);
		add_tile(dq + off, C, t.tmp, N, D, 1.0f);
		transpose_tile(t.t, NP, g, N, N);
		kk->attn_pv(t.tmp, D, t.t, NP, q + off, C, N, D);
		add_tile(dk + off, C, t.tmp, N, D, 1.0f);
	}
}

void op_attn_av_backward(float *dattn, float *dv, const float *dav,
			 const float *attn, const float *v, float *scratch,
			 int BW, int NH, int N, int C,
			 const struct swin_kernels *kk, int threads)
{
	int D = C / NH, NP = attn_padded_n(N);
	long pairs = (long)BW * NH;
	size_t per_thread = op_attn_matmul_backward_scratch(N, D);

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long p = 0; p < pairs; p++) {
		int bw = (int)(p / NH), h = (int)(p % NH);
		struct attn_tiles t = attn_tiles_at(scratch + (size_t)omp_get_thread_num() * per_thread,
						    N, D, 0);
		long off = (long)bw * N * C + h * D;
		if (dattn) {
			kk->attn_qk(t.a, NP, dav + off, C, v + off, C, N, D, 1.0f, t.qk);
			for (int i = 0; i < N; i++)
				for (int j = 0; j < N; j++)
					dattn[p * N * N + (long)i * N + j] += t.a[(size_t)i * NP + j];
		}
		if (dv) {
			transpose_tile(t.t, NP, attn + p * N * N, N, N);
			kk->attn_pv(t.tmp, D, t.t, NP, dav + off, C, N, D);
			add_tile(dv + off, C, t.tmp, N, D, 1.0f);
		}
	}
}

/* ---- fused decomposed kernels ---- */

/* In place through point p when it is quantized (pre indexed from off). */
static inline double fq_span(const struct fq_bwd *p, size_t off, float *d, size_t n,
			     const uint8_t *keep)
{
	return p->pre ? fq_bwd_span(p, p->pre + off, d, d, n, keep) : 0.0;
}

/* One element through point p when it is quantized. */
static inline float fqb(const struct fq_bwd *p, size_t i, float dy, double *acc)
{
	return p->pre ? fq_bwd_elem(p, p->pre[i], dy, acc) : dy;
}

size_t op_layernorm_steps_backward_scratch(int C)
{
	return 8 * (size_t)C; /* the partials (6C), then two rows */
}

void op_layernorm_steps_backward(float *din, float *dw, float *db,
				 double *dscale, const float *dout,
				 const float *centered, const float *var,
				 const float *rstd, const float *normalized,
				 const float *w, const struct fq_bwd *fq,
				 float *scratch, int M, int C, int threads)
{
	const struct fq_bwd *fo = &fq[LN_OUT];
	size_t per_thread = op_layernorm_steps_backward_scratch(C);
	double acc[LN_POINTS] = { 0 };

	zero_partials(scratch, per_thread, C, threads);
	#pragma omp parallel num_threads(threads)
	{
		float *base = scratch + (size_t)omp_get_thread_num() * per_thread;
		struct ln_partials part = ln_partials_at(base, C);
		float *pw = part.fw, *pb = part.fb;
		float *dn = base + 6 * (size_t)C, *dq = dn + C;
		#pragma omp for schedule(static) reduction(+:acc[:LN_POINTS])
		for (int i = 0; i < M; i++) {
			size_t o = (size_t)i * C;
			const float *xc = centered + o, *nz = normalized + o;
			float *dx = din + o;
			/* out = normalized * w + b, through the out point */
			if (fo->pre)
				acc[LN_OUT] += fq_bwd_span(fo, fo->pre + o, dn, dout + o, (size_t)C, NULL);
			else
				memcpy(dn, dout + o, (size_t)C * sizeof(float));
			for (int j = 0; j < C; j++) {
				pw[j] += dn[j] * nz[j];
				pb[j] += dn[j];
				dn[j] *= w[j];
			}
			if (++part.rows == FOLD_ROWS)
				ln_partials_fold(&part, C);
			/* normalized = centered * rstd */
			acc[LN_NORMALIZED] += fq_span(&fq[LN_NORMALIZED], o, dn, (size_t)C, NULL);
			float drstd = dot16(dn, xc, C);
			drstd = fqb(&fq[LN_RSTD], (size_t)i, drstd, &acc[LN_RSTD]);
			/* rstd = 1 / sqrt(var + eps) */
			float r = 1.0f / sqrtf(var[i] + SWIN_LN_EPS);
			float dvar = fqb(&fq[LN_VAR], (size_t)i, drstd * (-0.5f * r * r * r),
					 &acc[LN_VAR]);
			/* var = mean(square); square = centered^2 */
			float dsq = dvar / (float)C, rs = rstd[i];
			for (int j = 0; j < C; j++)
				dq[j] = dsq;
			acc[LN_SQUARE] += fq_span(&fq[LN_SQUARE], o, dq, (size_t)C, NULL);
			for (int j = 0; j < C; j++)
				dn[j] = dn[j] * rs + 2.0f * xc[j] * dq[j];
			/* centered = in - mean; mean = row mean of in */
			acc[LN_CENTERED] += fq_span(&fq[LN_CENTERED], o, dn, (size_t)C, NULL);
			float dmean = fqb(&fq[LN_MEAN], (size_t)i, -sum16(dn, C), &acc[LN_MEAN]);
			dmean /= (float)C;
			for (int j = 0; j < C; j++)
				dx[j] += dn[j] + dmean;
		}
		ln_partials_fold(&part, C);
	}
	for (int p = 0; dscale && p < LN_POINTS; p++)
		dscale[p] += acc[p];
	reduce_partials(dw, db, scratch, per_thread, C, threads);
}

void op_gelu_steps_backward(float *d, const float *fc1, const float *gelu_out,
			    const struct fq_bwd *fq_gelu,
			    const struct fq_bwd *fq_fc1, double acc[2], size_t n,
			    int threads)
{
	/* chunks that stay in L1 between the three steps */
	const size_t chunk = 1024;
	long chunks = (long)((n + chunk - 1) / chunk);
	double a0 = 0.0, a1 = 0.0;

	#pragma omp parallel for num_threads(threads) schedule(static) reduction(+:a0, a1)
	for (long c = 0; c < chunks; c++) {
		size_t i0 = (size_t)c * chunk, len = n - i0 < chunk ? n - i0 : chunk;
		float *dc = d + i0;
		a0 += fq_span(fq_gelu, i0, dc, len, NULL);
		for (size_t i = 0; i < len; i++)
			dc[i] *= gelu_grad(fc1[i0 + i], gelu_out[i0 + i]);
		a1 += fq_span(fq_fc1, i0, dc, len, NULL);
	}
	acc[0] += a0;
	acc[1] += a1;
}

size_t op_attention_steps_backward_scratch(int N, int D, int NH)
{
	return attn_tiles_size(N, D, NH);
}

void op_attention_steps_backward(float *dq_scaled, float *dk, float *dv,
				 float *dbias, double *dscale, const float *dav,
				 const float *q_scaled, const float *k,
				 const float *v, const float *logits,
				 const float *exp, const float *exp_pre,
				 const float *sum, const float *recip,
				 const float *attn, const uint8_t *keep,
				 const struct fq_bwd *fq, float *scratch,
				 int BW, int nW, int NH, int N, int C,
				 const struct swin_kernels *kk, int threads)
{
	int D = C / NH, NP = attn_padded_n(N);
	long pairs = (long)BW * NH, nn = (long)N * N;
	size_t per_thread = op_attention_steps_backward_scratch(N, D, NH);
	double acc[AT_POINTS] = { 0 };

	zero_dbias(scratch, per_thread, N, D, NH, threads);
	#pragma omp parallel num_threads(threads)
	{
		struct attn_tiles t = attn_tiles_at(scratch + (size_t)omp_get_thread_num() * per_thread,
						    N, D, NH);
		#pragma omp for schedule(static) reduction(+:acc[:AT_POINTS])
		for (long p = 0; p < pairs; p++) {
			int bw = (int)(p / NH), h = (int)(p % NH);
			long off = (long)bw * N * C + h * D, pn = p * nn;
			const float *dah = dav + off;
			float *g = t.a;

			/* av = attn @ v_h: dattn = dav_h @ v_h^T; dv_h += attn^T @ dav_h */
			kk->attn_qk(g, NP, dah, C, v + off, C, N, D, 1.0f, t.qk);
			transpose_tile(t.t, NP, attn + pn, N, N);
			kk->attn_pv(t.tmp, D, t.t, NP, dah, C, N, D);
			add_tile(dv + off, C, t.tmp, N, D, 1.0f);
			for (int i = 0; i < N; i++) {
				long r = p * N + i;
				size_t e0 = (size_t)(pn + (long)i * N);
				const uint8_t *kr = keep ? keep + ((size_t)(bw % nW) * N + i) * N : NULL;
				const float *ep = exp_pre + e0;
				float *gi = g + (size_t)i * NP;
				/* attn = exp * recip (out point first) */
				acc[AT_OUT] += fq_span(&fq[AT_OUT], e0, gi, (size_t)N, NULL);
				float drecip = dot16(gi, exp + e0, N), rc = recip[r];
				drecip = fqb(&fq[AT_RECIP], (size_t)r, drecip, &acc[AT_RECIP]);
				/* recip = 1 / sum */
				float rs = 1.0f / sum[r];
				float dsum = fqb(&fq[AT_SUM], (size_t)r, -drecip * rs * rs, &acc[AT_SUM]);
				/* sum = row sum of exp */
				for (int j = 0; j < N; j++)
					gi[j] = gi[j] * rc + dsum;
				/* exp = e^sub_max (0 where masked); sub_max = x - max_kept */
				acc[AT_EXP] += fq_span(&fq[AT_EXP], e0, gi, (size_t)N, kr);
				for (int j = 0; j < N; j++)
					gi[j] = kr && !kr[j] ? 0.0f : gi[j] * ep[j];
				acc[AT_SUB_MAX] += fq_span(&fq[AT_SUB_MAX], e0, gi, (size_t)N, kr);
				int am;
				max_kept(logits + e0, kr, N, &am);
				if (am >= 0)
					gi[am] -= sum16(gi, N);
				/* logits = qk + bias, then qk's own point */
				acc[AT_LOGITS] += fq_span(&fq[AT_LOGITS], e0, gi, (size_t)N, NULL);
				float *dbr = t.dbias + (size_t)h * nn + (size_t)i * N;
				for (int j = 0; j < N; j++)
					dbr[j] += gi[j];
				acc[AT_QK] += fq_span(&fq[AT_QK], e0, gi, (size_t)N, NULL);
			}
			/* qk = q_scaled_h @ k_h^T */
			kk->attn_pv(t.tmp, D, g, NP, k + off, C, N, D);
			add_tile(dq_scaled + off, C, t.tmp, N, D, 1.0f);
			transpose_tile(t.t, NP, g, NP, N);
			kk->attn_pv(t.tmp, D, t.t, NP, q_scaled + off, C, N, D);
			add_tile(dk + off, C, t.tmp, N, D, 1.0f);
		}
	}
	for (int p = 0; dscale && p < AT_POINTS; p++)
		dscale[p] += acc[p];
	if (dbias)
		reduce_dbias(dbias, scratch, per_thread, N, D, NH, threads);
}
