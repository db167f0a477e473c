/*
 * torch.ao.quantization.HistogramObserver (torch 1.13) in C (private to
 * observers/): the mse observer's state and its L2 range search.
 *
 * The state is torch's: a float32 histogram of `bins` bins over
 * [min, max].  A batch inside the range is added bin by bin; a batch that
 * widens it makes a new range whose width is an integer multiple
 * (downsample rate) of the old width / upsample_rate, the old histogram
 * being spread uniformly over upsample_rate sub-bins and summed into the
 * new bins (torch's _adjust_min_max and _combine_histograms).  The search
 * is torch's _non_linear_param_search, shrinking the range from the side
 * with the lighter tail while the modelled L2 quantization error falls.
 *
 * Every float32 step follows torch's tensor arithmetic; observers/README.md
 * lists where and why this code departs from torch 1.13 (histc's integer
 * truncation of the range, NaN/Inf, a constant first batch, sums in
 * double).
 */
#ifndef QCAL_OBSERVERS_TORCHHIST_H
#define QCAL_OBSERVERS_TORCHHIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "observers/scan.h"

struct torchhist {
	int bins;
	int upsample;
	bool empty;          /* torch: min_val == inf and max_val == -inf */
	float min, max;      /* the histogram's range (torch's min_val/max_val) */
	float *hist;         /* [bins], storage owned by the caller */
};

void torchhist_init(struct torchhist *h, int bins, int upsample, float *storage);
void torchhist_reset(struct torchhist *h);

/*
 * One torch forward() with x[0..n) (kept elements only if keep != NULL),
 * counted by up to `threads` threads; non-finite values are skipped and
 * reported in *st.  QCAL_ENOMEM with h unchanged.
 */
enum qcal_status torchhist_update(struct torchhist *h, const float *x,
				  const uint8_t *keep, size_t n, int threads,
				  struct scan_stats *st, struct qcal_err *err);

/*
 * dst += src: the combined range is made as torch would for a batch
 * covering src's range, dst's histogram is re-binned as torch does, and
 * src's bins are spread over the new bins in proportion to their overlap.
 */
enum qcal_status torchhist_merge(struct torchhist *dst,
				 const struct torchhist *src,
				 struct qcal_err *err);

/*
 * torch's _non_linear_param_search for a target of dst_nbins levels:
 * the clip range [*lo, *hi].  h must be non-empty with min < max.
 * QCAL_ENOMEM (a scratch of bins floats).
 */
enum qcal_status torchhist_search(const struct torchhist *h, double dst_nbins,
				  float *lo, float *hi, struct qcal_err *err);

/* The edges the bins span: [min, max], or torch.histc's [v - 1, v + 1]
 * for a state holding the single value v. */
void torchhist_edges(const struct torchhist *h, float *lo, float *hi);

/* torch's _compute_quantization_error for bins [start, end] (tests). */
double torchhist_l2_error(const struct torchhist *h, int start, int end,
			  double dst_nbins);

#endif
