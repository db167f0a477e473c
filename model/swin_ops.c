/*
 * Forward kernels of Swin V1 (see swin_ops.h for shapes).
 *
 * Reductions accumulate in float with sixteen independent partial sums, so
 * the compiler can vectorise them without -ffast-math and the result does not
 * depend on the thread count.  Every parallel loop splits over rows, never
 * inside a reduction.
 */
#include "model/swin_ops.h"

#include "model/vmath.h"

#include <math.h>
#include <omp.h>
#include <string.h>

void swin_window_geom_init(struct swin_window_geom *g, int B, int H, int W,
			   int C, int ws, int shift)
{
	g->B = B;
	g->H = H;
	g->W = W;
	g->C = C;
	g->ws = ws;
	g->Hp = (H + ws - 1) / ws * ws;
	g->Wp = (W + ws - 1) / ws * ws;
	g->nWh = g->Hp / ws;
	g->nWw = g->Wp / ws;
	g->nW = g->nWh * g->nWw;
	g->N = ws * ws;
	g->shift = shift;
}

static inline float sum_floats(const float *x, int n)
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

static inline float sum_sq_centered(const float *x, float mean, int n)
{
	float acc[16] = { 0 };
	int i = 0;

	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++) {
			float d = x[i + j] - mean;
			acc[j] += d * d;
		}
	for (; i < n; i++) {
		float d = x[i] - mean;
		acc[0] += d * d;
	}
	for (int j = 8; j > 0; j /= 2)
		for (int l = 0; l < j; l++)
			acc[l] += acc[l + j];
	return acc[0];
}

void op_patch_embed_forward(float *out, float *cols, const float *in,
			    const float *w, const float *b, int B, int Cin,
			    int H, int W, int P, int E,
			    const struct swin_kernels *k, int threads)
{
	int Ho = H / P, Wo = W / P, K = Cin * P * P;
	long rows = (long)B * Ho * Wo;

	/* im2col with the kernel's (Cin, P, P) order so w (E, K) is used as is */
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		int bi = (int)(r / (Ho * Wo)), t = (int)(r % (Ho * Wo));
		int oy = t / Wo, ox = t % Wo;
		float *col = cols + r * K;
		for (int c = 0; c < Cin; c++)
			for (int ky = 0; ky < P; ky++) {
				const float *src = in + (((long)bi * Cin + c) * H + oy * P + ky) * W + ox * P;
				memcpy(col + (c * P + ky) * P, src, (size_t)P * sizeof(float));
			}
	}
	op_linear_forward(out, cols, w, b, (int)rows, K, E, k, threads);
}

void op_linear_forward(float *out, const float *in, const float *w,
		       const float *b, int M, int K, int N,
		       const struct swin_kernels *k, int threads)
{
	/* Pre-filling C with the bias and accumulating (beta = 1) saves both the
	 * library's zeroing pass and a separate bias pass over the output. */
	if (b) {
		#pragma omp parallel for num_threads(threads) schedule(static)
		for (int i = 0; i < M; i++)
			memcpy(out + (long)i * N, b, (size_t)N * sizeof(float));
	}
	k->gemm(false, true, M, N, K, 1.0f, in, K, w, K, b ? 1.0f : 0.0f, out, N,
		threads);
}

void op_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
			  const float *w, const float *b, int M, int C,
			  int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++) {
		const float *x = in + (long)i * C;
		float *y = out + (long)i * C;
		float m = sum_floats(x, C) / (float)C;
		float v = sum_sq_centered(x, m, C) / (float)C;
		float r = 1.0f / sqrtf(v + SWIN_LN_EPS);
		for (int j = 0; j < C; j++)
			y[j] = (x[j] - m) * r * w[j] + b[j];
		if (mean)
			mean[i] = m;
		if (rstd)
			rstd[i] = r;
	}
}

void op_layernorm_steps_forward(float *mean, float *centered, float *square,
				float *var, float *rstd, float *normalized,
				float *out, const float *in, const float *w,
				const float *b, int M, int C, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++) {
		const float *x = in + (long)i * C;
		float *xc = centered + (long)i * C, *sq = square + (long)i * C;
		float *nz = normalized + (long)i * C, *y = out + (long)i * C;
		float m = sum_floats(x, C) / (float)C;
		for (int j = 0; j < C; j++) {
			xc[j] = x[j] - m;
			sq[j] = xc[j] * xc[j];
		}
		float v = sum_floats(sq, C) / (float)C;
		float r = 1.0f / sqrtf(v + SWIN_LN_EPS);
		for (int j = 0; j < C; j++) {
			nz[j] = xc[j] * r;
			y[j] = nz[j] * w[j] + b[j];
		}
		mean[i] = m;
		var[i] = v;
		rstd[i] = r;
	}
}

void op_row_mean(float *mean, const float *in, int M, int C, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++)
		mean[i] = sum_floats(in + (long)i * C, C) / (float)C;
}

void op_row_sub(float *centered, const float *in, const float *mean, int M,
		int C, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++)
		for (int j = 0; j < C; j++)
			centered[(long)i * C + j] = in[(long)i * C + j] - mean[i];
}

void op_square(float *out, const float *in, size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] * in[i];
}

void op_rsqrt_eps(float *rstd, const float *var, size_t n, float eps, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		rstd[i] = 1.0f / sqrtf(var[i] + eps);
}

void op_row_scale(float *out, const float *in, const float *s, int M, int C,
		  int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++)
		for (int j = 0; j < C; j++)
			out[(long)i * C + j] = in[(long)i * C + j] * s[i];
}

void op_affine(float *out, const float *in, const float *w, const float *b,
	       int M, int C, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (int i = 0; i < M; i++)
		for (int j = 0; j < C; j++)
			out[(long)i * C + j] = in[(long)i * C + j] * w[j] + b[j];
}

void op_window_partition(float *xw, const float *x,
			 const struct swin_window_geom *g, int threads)
{
	long windows = (long)g->B * g->nW;
	size_t row = (size_t)g->C * sizeof(float);

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long bw = 0; bw < windows; bw++) {
		int b = (int)(bw / g->nW), w = (int)(bw % g->nW);
		int wy = w / g->nWw, wx = w % g->nWw;
		for (int iy = 0; iy < g->ws; iy++) {
			int sh = (wy * g->ws + iy + g->shift) % g->Hp;
			for (int ix = 0; ix < g->ws; ix++) {
				int sw = (wx * g->ws + ix + g->shift) % g->Wp;
				float *dst = xw + (bw * g->N + iy * g->ws + ix) * g->C;
				if (sh < g->H && sw < g->W)
					memcpy(dst, x + (((long)b * g->H + sh) * g->W + sw) * g->C, row);
				else
					memset(dst, 0, row);
			}
		}
	}
}

void op_layernorm_windows_forward(float *xw, const float *x, const float *w,
				  const float *b, const struct swin_window_geom *g,
				  int threads)
{
	long windows = (long)g->B * g->nW;
	int C = g->C;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long bw = 0; bw < windows; bw++) {
		int bi = (int)(bw / g->nW), wi = (int)(bw % g->nW);
		int wy = wi / g->nWw, wx = wi % g->nWw;
		for (int iy = 0; iy < g->ws; iy++) {
			int sh = (wy * g->ws + iy + g->shift) % g->Hp;
			for (int ix = 0; ix < g->ws; ix++) {
				int sw = (wx * g->ws + ix + g->shift) % g->Wp;
				float *y = xw + (bw * g->N + iy * g->ws + ix) * C;
				if (sh >= g->H || sw >= g->W) {
					memset(y, 0, (size_t)C * sizeof(float));
					continue;
				}
				const float *xr = x + (((long)bi * g->H + sh) * g->W + sw) * C;
				float m = sum_floats(xr, C) / (float)C;
				float v = sum_sq_centered(xr, m, C) / (float)C;
				float r = 1.0f / sqrtf(v + SWIN_LN_EPS);
				for (int j = 0; j < C; j++)
					y[j] = (xr[j] - m) * r * w[j] + b[j];
			}
		}
	}
}

void op_window_reverse_add(float *out, const float *res, const float *y,
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
			const float *src = y + (win * g->N + (hr % g->ws) * g->ws + wr % g->ws) * g->C;
			long o = (r * g->W + w) * g->C;
			for (int c = 0; c < g->C; c++)
				out[o + c] = res[o + c] + src[c];
		}
	}
}

static int shift_region(int i, int size, int ws, int shift)
{
	if (i < size - ws)
		return 0;
	return i < size - shift ? 1 : 2;
}

void op_shift_keep_mask(uint8_t *keep, const struct swin_window_geom *g)
{
	int N = g->N;

	for (int w = 0; w < g->nW; w++) {
		int wy = w / g->nWw, wx = w % g->nWw;
		for (int i = 0; i < N; i++) {
			int hi = wy * g->ws + i / g->ws, wi = wx * g->ws + i % g->ws;
			int li = shift_region(hi, g->Hp, g->ws, g->shift) * 3 +
				 shift_region(wi, g->Wp, g->ws, g->shift);
			for (int j = 0; j < N; j++) {
				int hj = wy * g->ws + j / g->ws, wj = wx * g->ws + j % g->ws;
				int lj = shift_region(hj, g->Hp, g->ws, g->shift) * 3 +
					 shift_region(wj, g->Wp, g->ws, g->shift);
				keep[((long)w * N + i) * N + j] = li == lj;
			}
		}
	}
}

void op_gather_rel_bias(float *bias, const float *table, const int32_t *index,
			int NH, int N)
{
	for (int h = 0; h < NH; h++)
		for (int ij = 0; ij < N * N; ij++)
			bias[(long)h * N * N + ij] = table[(long)index[ij] * NH + h];
}

void op_split_qkv(float *q, float *k, float *v, const float *qkv, size_t rows,
		  int C, int threads)
{
	size_t bytes = (size_t)C * sizeof(float);

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t r = 0; r < rows; r++) {
		memcpy(q + r * C, qkv + r * 3 * C, bytes);
		memcpy(k + r * C, qkv + r * 3 * C + C, bytes);
		memcpy(v + r * C, qkv + r * 3 * C + 2 * C, bytes);
	}
}

static inline float max_floats(const float *x, int n)
{
	float acc[16];
	int i = 0;

	for (int j = 0; j < 16; j++)
		acc[j] = -INFINITY;
	for (; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
	for (; i < n; i++)
		acc[0] = x[i] > acc[0] ? x[i] : acc[0];
	for (int j = 8; j > 0; j /= 2)
		for (int l = 0; l < j; l++)
			acc[l] = acc[l + j] > acc[l] ? acc[l + j] : acc[l];
	return acc[0];
}

void op_shift_mask_bias(float *bias, const uint8_t *keep, size_t n)
{
	for (size_t i = 0; i < n; i++)
		bias[i] = keep[i] ? 0.0f : -INFINITY;
}

size_t op_window_attention_scratch(int N, int D)
{
	return (size_t)N * attn_padded_n(N) + attn_qk_scratch(N, D);
}

/*
 * One (window, head) of the fused float attention: scores into a padded
 * (N, NP) scratch tile, bias and shift mask added (masked keys carry -inf,
 * so exp gives exactly 0), softmax in place, then the product with v.
 */
static void attention_window(float *out, int ld_out, const float *q,
			     const float *k, const float *v, int ld, int N,
			     int D, const float *restrict bias,
			     const float *restrict mask_bias, float *scratch,
			     const struct swin_kernels *kk)
{
	int NP = attn_padded_n(N);
	float *restrict s = scratch;

	kk->attn_qk(s, NP, q, ld, k, ld, N, D, 1.0f, scratch + (size_t)N * NP);
	for (int i = 0; i < N; i++) {
		float *restrict si = s + (size_t)i * NP;
		const float *restrict bi = bias + (size_t)i * N;
		if (mask_bias) {
			const float *restrict mi = mask_bias + (size_t)i * N;
			for (int j = 0; j < N; j++)
				si[j] = (si[j] + bi[j]) + mi[j];
		} else {
			for (int j = 0; j < N; j++)
				si[j] += bi[j];
		}
		float mx = max_floats(si, N);
		for (int j = 0; j < N; j++)
			si[j] = vm_expf(si[j] - mx);
		float r = 1.0f / sum_floats(si, N);
		for (int j = 0; j < N; j++)
			si[j] *= r;
	}
	kk->attn_pv(out, ld_out, s, NP, v, ld, N, D);
}

void op_window_attention_forward(float *av, float *scratch, const float *q,
				 const float *k, const float *v, int ld,
				 const float *bias, const float *mask_bias, int BW,
				 int nW, int NH, int N, int C,
				 const struct swin_kernels *kk, int threads)
{
	int D = C / NH;
	long pairs = (long)BW * NH;
	size_t per_thread = op_window_attention_scratch(N, D);

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long p = 0; p < pairs; p++) {
		int bw = (int)(p / NH), h = (int)(p % NH);
		long base = (long)bw * N * ld + h * D;
		attention_window(av + (long)bw * N * C + h * D, C, q + base, k + base,
				 v + base, ld, N, D, bias + (long)h * N * N,
				 mask_bias ? mask_bias + (long)(bw % nW) * N * N : NULL,
				 scratch + (size_t)omp_get_thread_num() * per_thread, kk);
	}
}

void op_scale_columns(float *x, size_t rows, int ld, int cols, float s,
		      int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t r = 0; r < rows; r++)
		for (int j = 0; j < cols; j++)
			x[r * ld + j] *= s;
}

void op_attn_qk(float *qk, float *scratch, const float *q, const float *k,
		int BW, int NH, int N, int C, const struct swin_kernels *kk,
		int threads)
{
	int D = C / NH;
	long pairs = (long)BW * NH;
	size_t per_thread = attn_qk_scratch(N, D);

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long p = 0; p < pairs; p++) {
		int bw = (int)(p / NH), h = (int)(p % NH);
		kk->attn_qk(qk + p * N * N, N, q + (long)bw * N * C + h * D, C,
			    k + (long)bw * N * C + h * D, C, N, D, 1.0f,
			    scratch + (size_t)omp_get_thread_num() * per_thread);
	}
}

void op_attn_av(float *av, const float *attn, const float *v, int BW, int NH,
		int N, int C, const struct swin_kernels *kk, int threads)
{
	int D = C / NH;
	long pairs = (long)BW * NH;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long p = 0; p < pairs; p++) {
		int bw = (int)(p / NH), h = (int)(p % NH);
		kk->attn_pv(av + (long)bw * N * C + h * D, C, attn + p * N * N, N,
			    v + (long)bw * N * C + h * D, C, N, D);
	}
}

void op_add_bias_heads(float *logits, const float *qk, const float *bias,
		       int BW, int NH, int N, int threads)
{
	long nn = (long)N * N;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long p = 0; p < (long)BW * NH; p++) {
		const float *bh = bias + (p % NH) * nn;
		for (long i = 0; i < nn; i++)
			logits[p * nn + i] = qk[p * nn + i] + bh[i];
	}
}

void op_softmax_sub_max(float *sub_max, const float *x, const uint8_t *keep,
			int BW, int nW, int NH, int N, int threads)
{
	long rows = (long)BW * NH * N;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * N;
		float *yr = sub_max + r * N;
		if (!keep) {
			float mx = max_floats(xr, N);
			for (int j = 0; j < N; j++)
				yr[j] = xr[j] - mx;
			continue;
		}
		const uint8_t *kr = keep + ((r / ((long)NH * N)) % nW * N + r % N) * N;
		float mx = -INFINITY;
		for (int j = 0; j < N; j++)
			mx = kr[j] && xr[j] > mx ? xr[j] : mx;
		for (int j = 0; j < N; j++)
			yr[j] = kr[j] ? xr[j] - mx : 0.0f;
	}
}

void op_softmax_exp(float *e, const float *sub_max, const uint8_t *keep,
		    int BW, int nW, int NH, int N, int threads)
{
	long rows = (long)BW * NH * N;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		const float *xr = sub_max + r * N;
		float *er = e + r * N;
		for (int j = 0; j < N; j++)
			er[j] = vm_expf(xr[j]);
		if (keep) {
			const uint8_t *kr = keep + ((r / ((long)NH * N)) % nW * N + r % N) * N;
			for (int j = 0; j < N; j++)
				er[j] = kr[j] ? er[j] : 0.0f;
		}
	}
}

void op_softmax_steps_forward(float *sub_max, float *e, float *sum, float *recip,
			      float *out, const float *x, const uint8_t *keep,
			      int BW, int nW, int NH, int N, int threads)
{
	long rows = (long)BW * NH * N;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * N;
		float *sm = sub_max + r * N, *er = e + r * N, *o = out + r * N;
		const uint8_t *kr = keep ? keep + ((r / ((long)NH * N)) % nW * N + r % N) * N : NULL;
		float mx;
		if (!kr) {
			mx = max_floats(xr, N);
			for (int j = 0; j < N; j++)
				sm[j] = xr[j] - mx;
		} else {
			mx = -INFINITY;
			for (int j = 0; j < N; j++)
				mx = kr[j] && xr[j] > mx ? xr[j] : mx;
			for (int j = 0; j < N; j++)
				sm[j] = kr[j] ? xr[j] - mx : 0.0f;
		}
		for (int j = 0; j < N; j++)
			er[j] = vm_expf(sm[j]);
		if (kr)
			for (int j = 0; j < N; j++)
				er[j] = kr[j] ? er[j] : 0.0f;
		float s = sum_floats(er, N), rc = 1.0f / s;
		for (int j = 0; j < N; j++)
			o[j] = er[j] * rc;
		sum[r] = s;
		recip[r] = rc;
	}
}

void op_row_sum(float *sum, const float *in, size_t rows, int N, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t r = 0; r < rows; r++)
		sum[r] = sum_floats(in + r * N, N);
}

void op_reciprocal(float *out, const float *in, size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		out[i] = 1.0f / in[i];
}

void op_expand_keep(uint8_t *full, const uint8_t *keep, int B, int nW, int NH,
		    int N)
{
	size_t nn = (size_t)N * N;

	for (int b = 0; b < B; b++)
		for (int w = 0; w < nW; w++)
			for (int h = 0; h < NH; h++)
				memcpy(full + ((((size_t)b * nW + w) * NH + h) * nn),
				       keep + (size_t)w * nn, nn);
}

void op_scale(float *out, const float *in, float s, size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		out[i] = in[i] * s;
}

void op_add(float *out, const float *a, const float *b, size_t n, int threads)
{
	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++)
		out[i] = a[i] + b[i];
}

void op_gelu_forward(float *out, const float *in, size_t n, int threads)
{
	const float alpha = (float)M_SQRT1_2;

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (size_t i = 0; i < n; i++) {
		float x = in[i];
		out[i] = x * 0.5f * (1.0f + vm_erff(x * alpha));
	}
}

int op_mlp_chunk_rows(int hidden)
{
	/* Keep a chunk's hidden activations (rows x hidden floats) near 1 MiB so
	 * they stay in L2 between fc1, GELU and fc2. */
	int rows = 262144 / (hidden > 0 ? hidden : 1);
	rows = rows / 32 * 32;
	return rows < 32 ? 32 : rows > 1024 ? 1024 : rows;
}

void op_mlp_residual_forward(float *out, const float *res, const float *in,
			     const float *w1, const float *b1, const float *w2,
			     const float *b2, int M, int C, int Hd,
			     float *scratch, const struct swin_kernels *kk,
			     int threads)
{
	const float alpha = (float)M_SQRT1_2;
	int max_chunk = op_mlp_chunk_rows(Hd);

	/*
	 * Few tokens (late stages at small batch): one chunk, with both GEMMs
	 * split across threads by output features so each weight is packed
	 * once, not once per thread.  The scratch holds threads * max_chunk
	 * rows, enough for M <= threads * max_chunk.
	 */
	if (M <= threads * max_chunk && (long)M * Hd <= 2L * 262144) {
		float *h = scratch;
		op_linear_forward(h, in, w1, b1, M, C, Hd, kk, threads);
		op_gelu_forward(h, h, (size_t)M * Hd, threads);
		#pragma omp parallel for num_threads(threads) schedule(static)
		for (int r = 0; r < M; r++)
			for (int j = 0; j < C; j++)
				out[(size_t)r * C + j] = res[(size_t)r * C + j] + b2[j];
		kk->gemm(false, true, M, C, Hd, 1.0f, h, Hd, w2, Hd, 1.0f, out, C, threads);
		return;
	}
	/* Equal chunks, a multiple of the thread count, none above the cache
	 * budget: small late-stage matrices still use every thread. */
	int chunks = (M + max_chunk - 1) / max_chunk;
	chunks = (chunks + threads - 1) / threads * threads;
	int chunk = (M + chunks - 1) / chunks;

	#pragma omp parallel num_threads(threads)
	{
		float *h = scratch + (size_t)omp_get_thread_num() * max_chunk * Hd;
		#pragma omp for schedule(static)
		for (int ci = 0; ci < chunks; ci++) {
			int r0 = ci * chunk, rows = M - r0 < chunk ? M - r0 : chunk;
			for (int r = 0; r < rows; r++)
				memcpy(h + (size_t)r * Hd, b1, (size_t)Hd * sizeof(float));
			kk->gemm(false, true, rows, Hd, C, 1.0f, in + (size_t)r0 * C, C,
				 w1, C, 1.0f, h, Hd, 1);
			for (size_t i = 0; i < (size_t)rows * Hd; i++)
				h[i] = h[i] * 0.5f * (1.0f + vm_erff(h[i] * alpha));
			for (int r = 0; r < rows; r++) {
				float *o = out + (size_t)(r0 + r) * C;
				const float *x = res + (size_t)(r0 + r) * C;
				for (int j = 0; j < C; j++)
					o[j] = x[j] + b2[j];
			}
			kk->gemm(false, true, rows, C, Hd, 1.0f, h, Hd, w2, Hd, 1.0f,
				 out + (size_t)r0 * C, C, 1);
		}
	}
}

void op_merge_gather(float *out, const float *in, int B, int H, int W, int C,
		     int threads)
{
	int Ho = (H + 1) / 2, Wo = (W + 1) / 2;
	long rows = (long)B * Ho * Wo;
	size_t bytes = (size_t)C * sizeof(float);
	static const int dy[4] = { 0, 1, 0, 1 }, dx[4] = { 0, 0, 1, 1 };

	#pragma omp parallel for num_threads(threads) schedule(static)
	for (long r = 0; r < rows; r++) {
		int b = (int)(r / ((long)Ho * Wo)), t = (int)(r % ((long)Ho * Wo));
		int oy = t / Wo, ox = t % Wo;
		for (int part = 0; part < 4; part++) {
			int y = 2 * oy + dy[part], x = 2 * ox + dx[part];
			float *dst = out + (r * 4 + part) * C;
			if (y < H && x < W)
				memcpy(dst, in + (((long)b * H + y) * W + x) * C, bytes);
			else
				memset(dst, 0, bytes);
		}
	}
}

void op_avgpool_forward(float *out, const float *in, int B, int T, int C)
{
	for (int b = 0; b < B; b++)
		for (int c = 0; c < C; c++) {
			float acc = 0.0f;
			for (int t = 0; t < T; t++)
				acc += in[((long)b * T + t) * C + c];
			out[(long)b * C + c] = acc / (float)T;
		}
}
