/*
 * Window-attention matmul kernels (see attn_kernels.h).
 *
 * The AVX-512 path keeps a 4-row x 64-column tile of S (16 zmm accumulators)
 * in registers while streaming over the head dimension, which is what makes
 * 49x49x32 products run near FMA throughput; K is first transposed into a
 * zero-padded (D, NP) panel so every load is a contiguous vector.  Rows and
 * columns past N are computed on zero padding and never stored.
 */
#include "model/attn_kernels.h"

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

int attn_padded_n(int N)
{
	return (N + 15) / 16 * 16;
}

size_t attn_qk_scratch(int N, int D)
{
	size_t NP = (size_t)attn_padded_n(N);
	/* kt panel (D, NP) + a 4-row zero-padded copy of q (4, D) */
	return NP * (size_t)D + 4 * (size_t)D + 16;
}

void attn_qk_naive(float *s, int ldp, const float *q, int ldq, const float *k,
		   int ldk, int N, int D, float alpha, float *scratch)
{
	(void)scratch;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++) {
			double acc = 0;
			for (int d = 0; d < D; d++)
				acc += (double)q[(size_t)i * ldq + d] * k[(size_t)j * ldk + d];
			s[(size_t)i * ldp + j] = (float)(alpha * acc);
		}
}

void attn_pv_naive(float *out, int ldo, const float *p, int ldp,
		   const float *v, int ldv, int N, int D)
{
	for (int i = 0; i < N; i++)
		for (int d = 0; d < D; d++) {
			double acc = 0;
			for (int j = 0; j < N; j++)
				acc += (double)p[(size_t)i * ldp + j] * v[(size_t)j * ldv + d];
			out[(size_t)i * ldo + d] = (float)acc;
		}
}

#if defined(__AVX512F__)

/* s rows i0..i0+3, column vectors cb..cb+NV-1: sum over d of qpad (4, D) x kt. */
#define QK_TILE(NV)                                                          \
	static void qk_tile_##NV(float *s, int ldp, int rows, const float *qpad, \
				 const float *kt, int NP, int cb, int D,        \
				 float alpha, int N)                            \
	{                                                                    \
		__m512 acc[4][NV];                                           \
		for (int r = 0; r < 4; r++)                                  \
			for (int c = 0; c < NV; c++)                         \
				acc[r][c] = _mm512_setzero_ps();             \
		for (int d = 0; d < D; d++) {                                \
			__m512 kv[NV];                                       \
			for (int c = 0; c < NV; c++)                         \
				kv[c] = _mm512_loadu_ps(kt + (size_t)d * NP + cb + 16 * c); \
			for (int r = 0; r < 4; r++) {                        \
				__m512 qb = _mm512_set1_ps(qpad[r * D + d]); \
				for (int c = 0; c < NV; c++)                 \
					acc[r][c] = _mm512_fmadd_ps(qb, kv[c], acc[r][c]); \
			}                                                    \
		}                                                            \
		__m512 va = _mm512_set1_ps(alpha);                           \
		__mmask16 m[NV];                                             \
		for (int c = 0; c < NV; c++) {                               \
			int left = N - (cb + 16 * c);                        \
			m[c] = left >= 16 ? (__mmask16)0xffff :              \
			       left > 0 ? (__mmask16)((1u << left) - 1u) : 0; \
		}                                                            \
		for (int r = 0; r < rows; r++)                               \
			for (int c = 0; c < NV; c++)                         \
				_mm512_mask_storeu_ps(s + (size_t)r * ldp + cb + 16 * c, \
						      m[c], _mm512_mul_ps(acc[r][c], va)); \
	}
QK_TILE(1)
QK_TILE(2)
QK_TILE(3)
QK_TILE(4)

void attn_qk_fast(float *s, int ldp, const float *q, int ldq, const float *k,
		  int ldk, int N, int D, float alpha, float *scratch)
{
	int NP = attn_padded_n(N);
	float *kt = scratch, *qpad = scratch + (size_t)NP * D;

	for (int d = 0; d < D; d++) {
		for (int j = 0; j < N; j++)
			kt[(size_t)d * NP + j] = k[(size_t)j * ldk + d];
		for (int j = N; j < NP; j++)
			kt[(size_t)d * NP + j] = 0.0f;
	}
	for (int i0 = 0; i0 < N; i0 += 4) {
		int rows = N - i0 < 4 ? N - i0 : 4;
		for (int r = 0; r < 4; r++)
			if (r < rows)
				memcpy(qpad + r * D, q + (size_t)(i0 + r) * ldq, (size_t)D * sizeof(float));
			else
				memset(qpad + r * D, 0, (size_t)D * sizeof(float));
		float *srow = s + (size_t)i0 * ldp;
		for (int cb = 0; cb < NP; cb += 64) {
			switch ((NP - cb) / 16 < 4 ? (NP - cb) / 16 : 4) {
			case 1: qk_tile_1(srow, ldp, rows, qpad, kt, NP, cb, D, alpha, N); break;
			case 2: qk_tile_2(srow, ldp, rows, qpad, kt, NP, cb, D, alpha, N); break;
			case 3: qk_tile_3(srow, ldp, rows, qpad, kt, NP, cb, D, alpha, N); break;
			default: qk_tile_4(srow, ldp, rows, qpad, kt, NP, cb, D, alpha, N); break;
			}
		}
	}
}

/*
 * out rows i0..i0+R-1 (rows of them valid), column vectors c0..c0+NV-1 with
 * masks m.  R * NV stays at 16 accumulators so the FMA chains over j hide
 * their latency.
 */
#define PV_TILE(R, NV)                                                       \
	static void pv_tile_##R##_##NV(float *out, int ldo, int rows,         \
				       const float *p, int ldp, const float *v, \
				       int ldv, int N, int c0, const __mmask16 *m) \
	{                                                                    \
		__m512 acc[R][NV];                                           \
		const float *prow[R];                                        \
		for (int r = 0; r < R; r++) {                                \
			prow[r] = p + (size_t)(r < rows ? r : 0) * ldp;      \
			for (int c = 0; c < NV; c++)                         \
				acc[r][c] = _mm512_setzero_ps();             \
		}                                                            \
		for (int j = 0; j < N; j++) {                                \
			__m512 vv[NV];                                       \
			const float *vj = v + (size_t)j * ldv + 16 * c0;     \
			for (int c = 0; c < NV; c++)                         \
				vv[c] = _mm512_maskz_loadu_ps(m[c], vj + 16 * c); \
			for (int r = 0; r < R; r++) {                        \
				__m512 pb = _mm512_set1_ps(prow[r][j]);      \
				for (int c = 0; c < NV; c++)                 \
					acc[r][c] = _mm512_fmadd_ps(pb, vv[c], acc[r][c]); \
			}                                                    \
		}                                                            \
		for (int r = 0; r < rows; r++)                               \
			for (int c = 0; c < NV; c++)                         \
				_mm512_mask_storeu_ps(out + (size_t)r * ldo + 16 * (c0 + c), \
						      m[c], acc[r][c]);      \
	}
PV_TILE(16, 1)
PV_TILE(8, 2)
PV_TILE(4, 3)
PV_TILE(4, 4)

void attn_pv_fast(float *out, int ldo, const float *p, int ldp, const float *v,
		  int ldv, int N, int D)
{
	int nvec = (D + 15) / 16;

	for (int c0 = 0; c0 < nvec; c0 += 4) {
		int nv = nvec - c0 < 4 ? nvec - c0 : 4;
		int R = nv == 1 ? 16 : nv == 2 ? 8 : 4;
		__mmask16 m[4];
		for (int c = 0; c < 4; c++) {
			int left = D - 16 * (c0 + c);
			m[c] = left >= 16 ? (__mmask16)0xffff :
			       left > 0 ? (__mmask16)((1u << left) - 1u) : 0;
		}
		for (int i0 = 0; i0 < N; i0 += R) {
			int rows = N - i0 < R ? N - i0 : R;
			const float *pi = p + (size_t)i0 * ldp;
			float *oi = out + (size_t)i0 * ldo;
			switch (nv) {
			case 1: pv_tile_16_1(oi, ldo, rows, pi, ldp, v, ldv, N, c0, m); break;
			case 2: pv_tile_8_2(oi, ldo, rows, pi, ldp, v, ldv, N, c0, m); break;
			case 3: pv_tile_4_3(oi, ldo, rows, pi, ldp, v, ldv, N, c0, m); break;
			default: pv_tile_4_4(oi, ldo, rows, pi, ldp, v, ldv, N, c0, m); break;
			}
		}
	}
}

#else /* portable loops; the compiler vectorises the inner j / d loops */

void attn_qk_fast(float *s, int ldp, const float *q, int ldq, const float *k,
		  int ldk, int N, int D, float alpha, float *scratch)
{
	int NP = attn_padded_n(N);
	float *kt = scratch;

	for (int d = 0; d < D; d++) {
		for (int j = 0; j < N; j++)
			kt[(size_t)d * NP + j] = k[(size_t)j * ldk + d];
		for (int j = N; j < NP; j++)
			kt[(size_t)d * NP + j] = 0.0f;
	}
	for (int i = 0; i < N; i++) {
		float *si = s + (size_t)i * ldp;
		for (int j = 0; j < N; j++)
			si[j] = 0.0f;
		for (int d = 0; d < D; d++) {
			float qd = q[(size_t)i * ldq + d];
			const float *kd = kt + (size_t)d * NP;
			for (int j = 0; j < N; j++)
				si[j] += qd * kd[j];
		}
		for (int j = 0; j < N; j++)
			si[j] *= alpha;
	}
}

void attn_pv_fast(float *out, int ldo, const float *p, int ldp, const float *v,
		  int ldv, int N, int D)
{
	for (int i = 0; i < N; i++) {
		float *o = out + (size_t)i * ldo;
		for (int d = 0; d < D; d++)
			o[d] = 0.0f;
		for (int j = 0; j < N; j++) {
			float pj = p[(size_t)i * ldp + j];
			const float *vj = v + (size_t)j * ldv;
			for (int d = 0; d < D; d++)
				o[d] += pj * vj[d];
		}
	}
}

#endif
