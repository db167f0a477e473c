/*
 * GEMM back ends.  OpenBLAS is told to stay single-threaded: qcal runs its own
 * OpenMP team over row blocks, so the library's pthread pool and the OpenMP
 * team never compete for the same cores, and the small per-window matmuls of
 * attention can run concurrently from several OpenMP threads.
 */
#include "model/gemm.h"

#include <cblas.h>
#include <omp.h>

static void gemm_blas(bool ta, bool tb, int M, int N, int K, float alpha,
		      const float *A, int lda, const float *B, int ldb,
		      float beta, float *C, int ldc, int threads)
{
	long work = (long)M * N * K;
	int parts = threads;

	if (parts < 1 || omp_in_parallel() || work < (1L << 20))
		parts = 1;
	/*
	 * Each part packs the operand it shares with the others, so split the
	 * longer side: rows for many tokens, output features for few tokens
	 * (late stages at batch 1), where packing the whole weight per thread
	 * would cost as much as the multiply.
	 */
	bool split_rows = M >= N;
	if ((split_rows ? M : N) < 2 * parts)
		parts = 1;
	if (parts == 1) {
		cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
			    tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda,
			    B, ldb, beta, C, ldc);
		return;
	}
	#pragma omp parallel for num_threads(parts) schedule(static)
	for (int p = 0; p < parts; p++) {
		if (split_rows) {
			int m0 = (int)((long)M * p / parts), m1 = (int)((long)M * (p + 1) / parts);
			const float *Ap = ta ? A + m0 : A + (long)m0 * lda;
			cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
				    tb ? CblasTrans : CblasNoTrans, m1 - m0, N, K, alpha,
				    Ap, lda, B, ldb, beta, C + (long)m0 * ldc, ldc);
		} else {
			/* a multiple of 16 columns per part keeps the kernels' tiles whole */
			int n0 = (int)((long)N * p / parts) / 16 * 16;
			int n1 = p + 1 == parts ? N : (int)((long)N * (p + 1) / parts) / 16 * 16;
			const float *Bp = tb ? B + (long)n0 * ldb : B + n0;
			cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
				    tb ? CblasTrans : CblasNoTrans, M, n1 - n0, K, alpha,
				    A, lda, Bp, ldb, beta, C + n0, ldc);
		}
	}
}

static void gemm_naive(bool ta, bool tb, int M, int N, int K, float alpha,
		       const float *A, int lda, const float *B, int ldb,
		       float beta, float *C, int ldc, int threads)
{
	(void)threads;
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double acc = 0;
			for (int k = 0; k < K; k++) {
				float a = ta ? A[(long)k * lda + i] : A[(long)i * lda + k];
				float b = tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
				acc += (double)a * b;
			}
			float *c = &C[(long)i * ldc + j];
			*c = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *c));
		}
}

static const struct swin_kernels blas_kernels = {
	"openblas", gemm_blas, attn_qk_fast, attn_pv_fast,
};
static const struct swin_kernels naive_kernels = {
	"naive", gemm_naive, attn_qk_naive, attn_pv_naive,
};

const struct swin_kernels *swin_kernels_blas(void)
{
	openblas_set_num_threads(1);
	return &blas_kernels;
}

const struct swin_kernels *swin_kernels_naive(void)
{
	return &naive_kernels;
}
