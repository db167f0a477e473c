/*
 * Resize, centre crop and normalisation (see preprocess.h for the numerics
 * and why they are Pillow's and torchvision's to the bit).
 *
 * The resampler follows Pillow's two-pass structure: weights per output
 * column and row, a horizontal pass over just the input rows the vertical
 * taps will touch, an 8-bit intermediate, then the vertical pass.  Unlike
 * Pillow it computes only the window that CenterCrop keeps, which for the
 * usual 256 -> 224 crop skips a quarter of the work and gives the same
 * bytes.  Integer accumulation and clipping are written without relying on
 * signed right shifts of negative numbers.
 */
#include "datasets/preprocess.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PIL_PRECISION_BITS (32 - 8 - 2)

void preprocess_options_init(struct preprocess_options *o, int size,
			     const float *mean, const float *std)
{
	memset(o, 0, sizeof(*o));
	o->size = size;
	o->resize_size = 0;
	o->interp = PREPROCESS_BILINEAR;
	o->norm = PREPROCESS_NORM_MEAN_STD;
	for (int c = 0; c < 3; c++) {
		o->mean[c] = mean ? mean[c] : 0.0f;
		o->std[c] = std ? std[c] : 1.0f;
	}
}

int preprocess_default_resize_size(int size)
{
	/* size / 0.875 = 8 * size / 7 never ends in exactly .5, so any
	 * rounding rule agrees with Python's round(). */
	return (int)floor((double)size / 0.875 + 0.5);
}

enum qcal_status preprocess_validate(const struct preprocess_options *o,
				     struct qcal_err *err)
{
	int rs = o->resize_size ? o->resize_size : preprocess_default_resize_size(o->size);

	if (o->size < 1 || o->size > 65535)
		return qcal_err_set(err, QCAL_EINVAL,
				    "preprocess: size %d must be in 1..65535", o->size);
	if (rs < o->size || rs > 65535)
		return qcal_err_set(err, QCAL_EINVAL,
				    "preprocess: resize size %d must be in %d..65535 (not below the crop)",
				    rs, o->size);
	if (o->interp != PREPROCESS_BILINEAR && o->interp != PREPROCESS_BICUBIC)
		return qcal_err_set(err, QCAL_EINVAL, "preprocess: unknown interpolation %d",
				    (int)o->interp);
	if (o->norm != PREPROCESS_NORM_MEAN_STD && o->norm != PREPROCESS_NORM_FOLDED)
		return qcal_err_set(err, QCAL_EINVAL, "preprocess: unknown normalisation %d",
				    (int)o->norm);
	for (int c = 0; o->norm == PREPROCESS_NORM_MEAN_STD && c < 3; c++) {
		if (!isfinite(o->mean[c]) || !isfinite(o->std[c]) || !(o->std[c] > 0))
			return qcal_err_set(err, QCAL_EINVAL,
					    "preprocess: channel %d mean %g / std %g: std must be finite and positive",
					    c, (double)o->mean[c], (double)o->std[c]);
	}
	return QCAL_OK;
}

const char *preprocess_interp_name(enum preprocess_interp interp)
{
	return interp == PREPROCESS_BICUBIC ? "bicubic" : "bilinear";
}

enum qcal_status preprocess_interp_parse(const char *name,
					 enum preprocess_interp *interp,
					 struct qcal_err *err)
{
	if (name && !strcasecmp(name, "bilinear")) {
		*interp = PREPROCESS_BILINEAR;
		return QCAL_OK;
	}
	if (name && !strcasecmp(name, "bicubic")) {
		*interp = PREPROCESS_BICUBIC;
		return QCAL_OK;
	}
	return qcal_err_set(err, QCAL_EINVAL,
			    "interpolation '%s': expected bilinear or bicubic",
			    name ? name : "(null)");
}

enum qcal_status preprocess_resized_dims(int h, int w, int resize_size, int *out_h,
					 int *out_w, struct qcal_err *err)
{
	int s = w <= h ? w : h, l = w <= h ? h : w;
	/* Python: int(size * long / short), a correctly rounded true division
	 * of exact integers, then truncation; the same in double here. */
	double nl = (double)((long long)resize_size * l) / (double)s;

	*out_h = *out_w = 0;
	if (s < 1 || resize_size < 1 || !(nl < (double)PREPROCESS_MAX_SIDE))
		return qcal_err_set(err, QCAL_ERANGE,
				    "a %dx%d image resized to a shorter side of %d would be %.0f pixels long (limit %d)",
				    w, h, resize_size, nl, PREPROCESS_MAX_SIDE);
	if (w <= h) {
		*out_w = resize_size;
		*out_h = (int)nl;
	} else {
		*out_w = (int)nl;
		*out_h = resize_size;
	}
	return QCAL_OK;
}

/* Python's round(d / 2) for d >= 0: half to even. */
static int half_round_even(int d)
{
	int k = d / 2;
	return d % 2 == 0 ? k : k + (k & 1);
}

void preprocess_center_crop_offsets(int h, int w, int crop, int *top, int *left)
{
	*top = half_round_even(h - crop);
	*left = half_round_even(w - crop);
}

void preprocess_scratch_free(struct preprocess_scratch *s)
{
	if (!s)
		return;
	free(s->kk);
	free(s->bounds);
	free(s->tmp);
	free(s->acc);
	memset(s, 0, sizeof(*s));
}

static int grow(void **p, size_t *cap, size_t bytes)
{
	if (bytes <= *cap)
		return 0;
	void *q = realloc(*p, bytes);
	if (!q)
		return -1;
	*p = q;
	*cap = bytes;
	return 0;
}

static double bilinear_filter(double x)
{
	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return 1.0 - x;
	return 0.0;
}

static double bicubic_filter(double x)
{
	const double a = -0.5;

	if (x < 0.0)
		x = -x;
	if (x < 1.0)
		return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
	if (x < 2.0)
		return (((x - 5) * x + 8) * x - 4) * a;
	return 0.0;
}

/* Fixed-point weights of one axis, for outputs [first, first + count). */
struct axis {
	int ksize;
	int *bounds;  /* (count, 2): first input index, number of taps */
	int32_t *k;   /* (count, ksize) */
};

/*
 * Pillow's precompute_coeffs + normalize_coeffs_8bpc for outputs
 * [first, first + count) of an in_size -> out_size resize.  The double
 * expressions keep Pillow's evaluation order so every weight rounds alike.
 * Weights are written as int32 into a region carved from s->kk after the
 * doubles of the same output, which are no longer needed by then.
 */
static int axis_weights(struct axis *ax, int in_size, int out_size, int first,
			int count, enum preprocess_interp interp, int32_t *kbuf,
			int *bbuf, double *dbuf)
{
	double (*filter)(double) = interp == PREPROCESS_BICUBIC ? bicubic_filter
								 : bilinear_filter;
	double support = interp == PREPROCESS_BICUBIC ? 2.0 : 1.0;
	float in0 = 0.0f, in1 = (float)in_size;
	double scale, filterscale;
	int ksize;

	filterscale = scale = (double)(in1 - in0) / out_size;
	if (filterscale < 1.0)
		filterscale = 1.0;
	support = support * filterscale;
	ksize = (int)ceil(support) * 2 + 1;
	ax->ksize = ksize;
	ax->bounds = bbuf;
	ax->k = kbuf;
	for (int i = 0; i < count; i++) {
		int xx = first + i;
		double center = in0 + (xx + 0.5) * scale;
		double ww = 0.0, ss = 1.0 / filterscale;
		int xmin = (int)(center - support + 0.5), xmax;
		double *k = dbuf;

		if (xmin < 0)
			xmin = 0;
		xmax = (int)(center + support + 0.5);
		if (xmax > in_size)
			xmax = in_size;
		xmax -= xmin;
		if (xmax > ksize)
			xmax = ksize; /* cannot happen: 2 * support + 1 <= ksize */
		for (int x = 0; x < xmax; x++) {
			double w = filter((x + xmin - center + 0.5) * ss);
			k[x] = w;
			ww += w;
		}
		for (int x = 0; x < xmax; x++) {
			if (ww != 0.0)
				k[x] /= ww;
		}
		for (int x = xmax; x < ksize; x++)
			k[x] = 0;
		for (int x = 0; x < ksize; x++) {
			double v = k[x];
			kbuf[(size_t)i * ksize + x] =
				v < 0 ? (int32_t)(-0.5 + v * (1 << PIL_PRECISION_BITS))
				      : (int32_t)(0.5 + v * (1 << PIL_PRECISION_BITS));
		}
		bbuf[2 * i] = xmin;
		bbuf[2 * i + 1] = xmax;
	}
	return ksize;
}

static inline uint8_t pil_clip8(int32_t ss)
{
	if (ss < 0)
		return 0;
	ss >>= PIL_PRECISION_BITS;
	return ss > 255 ? 255 : (uint8_t)ss;
}

/* Largest kernel (taps) for a resize from in_size to out_size. */
static int axis_ksize(int in_size, int out_size, enum preprocess_interp interp)
{
	double filterscale = (double)(float)in_size / out_size;
	double support = interp == PREPROCESS_BICUBIC ? 2.0 : 1.0;

	if (filterscale < 1.0)
		filterscale = 1.0;
	return (int)ceil(support * filterscale) * 2 + 1;
}

enum qcal_status preprocess_resize_window(struct image_u8 *out,
					  const struct image_u8 *in,
					  int out_w, int out_h, int x0, int y0,
					  int win_w, int win_h,
					  enum preprocess_interp interp,
					  struct preprocess_scratch *s,
					  struct qcal_err *err)
{
	int need_h, need_v, hk = 0, vk = 0, row_first, row_last;
	struct axis hax = { 0 }, vax = { 0 };
	const uint8_t *src;
	size_t src_stride, kk_bytes, b_bytes;
	enum qcal_status st;

	if (!in->data || in->w < 1 || in->h < 1 || out_w < 1 || out_h < 1 ||
	    out_w > PREPROCESS_MAX_SIDE || out_h > PREPROCESS_MAX_SIDE ||
	    in->w > PREPROCESS_MAX_SIDE || in->h > PREPROCESS_MAX_SIDE)
		return qcal_err_set(err, QCAL_ERANGE,
				    "resize: %dx%d -> %dx%d is out of range",
				    in->w, in->h, out_w, out_h);
	if (x0 < 0 || y0 < 0 || win_w < 1 || win_h < 1 || x0 > out_w - win_w ||
	    y0 > out_h - win_h)
		return qcal_err_set(err, QCAL_EINVAL,
				    "resize: window %dx%d at (%d, %d) outside the %dx%d result",
				    win_w, win_h, x0, y0, out_w, out_h);
	st = image_reserve(out, win_h, win_w, (size_t)win_h * win_w, "resize", err);
	if (st != QCAL_OK)
		return st;
	need_h = out_w != in->w;
	need_v = out_h != in->h;

	/* Scratch: weights of both axes as int32, their bounds, one row of
	 * doubles, then the 8-bit intermediate. */
	if (need_h)
		hk = axis_ksize(in->w, out_w, interp);
	if (need_v)
		vk = axis_ksize(in->h, out_h, interp);
	kk_bytes = ((size_t)win_w * hk + (size_t)win_h * vk) * sizeof(int32_t) +
		   (size_t)(hk > vk ? hk : vk) * sizeof(double) + sizeof(double);
	b_bytes = ((size_t)win_w + win_h) * 2 * sizeof(int);
	if (grow((void **)&s->kk, &s->kk_cap, kk_bytes) ||
	    grow((void **)&s->bounds, &s->bounds_cap, b_bytes))
		return qcal_err_set(err, QCAL_ENOMEM, "resize: out of memory");
	{
		double *dbuf = s->kk;
		int32_t *kbuf = (int32_t *)(void *)((char *)s->kk +
						    (size_t)(hk > vk ? hk : vk) * sizeof(double) +
						    sizeof(double));
		if (need_h)
			axis_weights(&hax, in->w, out_w, x0, win_w, interp, kbuf, s->bounds,
				     dbuf);
		if (need_v)
			axis_weights(&vax, in->h, out_h, y0, win_h, interp,
				     kbuf + (size_t)win_w * hk, s->bounds + 2 * win_w, dbuf);
	}

	/* Input rows the vertical pass reads (Pillow's ybox_first/last). */
	if (need_v) {
		row_first = vax.bounds[0];
		row_last = vax.bounds[2 * (win_h - 1)] + vax.bounds[2 * (win_h - 1) + 1];
	} else {
		row_first = y0;
		row_last = y0 + win_h;
	}

	if (need_h) {
		size_t rows = (size_t)(row_last - row_first);
		if (grow((void **)&s->tmp, &s->tmp_cap, rows * win_w * 3))
			return qcal_err_set(err, QCAL_ENOMEM, "resize: out of memory");
		for (size_t r = 0; r < rows; r++) {
			const uint8_t *irow = in->data + ((size_t)row_first + r) * in->w * 3;
			uint8_t *orow = s->tmp + r * win_w * 3;
			for (int xx = 0; xx < win_w; xx++) {
				int xmin = hax.bounds[2 * xx], n = hax.bounds[2 * xx + 1];
				const int32_t *k = hax.k + (size_t)xx * hax.ksize;
				const uint8_t *p = irow + (size_t)xmin * 3;
				int32_t s0 = 1 << (PIL_PRECISION_BITS - 1), s1 = s0, s2 = s0;
				for (int x = 0; x < n; x++) {
					s0 += p[3 * x] * k[x];
					s1 += p[3 * x + 1] * k[x];
					s2 += p[3 * x + 2] * k[x];
				}
				orow[3 * xx] = pil_clip8(s0);
				orow[3 * xx + 1] = pil_clip8(s1);
				orow[3 * xx + 2] = pil_clip8(s2);
			}
		}
		src = s->tmp;
		src_stride = (size_t)win_w * 3;
	} else {
		src = in->data + ((size_t)row_first * in->w + x0) * 3;
		src_stride = (size_t)in->w * 3;
	}

	if (need_v) {
		/* Row at a time: one accumulator per output sample, one tap's
		 * input row added per step (contiguous, vectorisable; integer
		 * sums do not depend on order). */
		size_t row_len = (size_t)win_w * 3;
		if (grow((void **)&s->acc, &s->acc_cap, row_len * sizeof(int32_t)))
			return qcal_err_set(err, QCAL_ENOMEM, "resize: out of memory");
		int32_t *acc = s->acc;
		for (int yy = 0; yy < win_h; yy++) {
			int ymin = vax.bounds[2 * yy] - row_first, n = vax.bounds[2 * yy + 1];
			const int32_t *k = vax.k + (size_t)yy * vax.ksize;
			uint8_t *orow = out->data + (size_t)yy * row_len;
			for (size_t i = 0; i < row_len; i++)
				acc[i] = 1 << (PIL_PRECISION_BITS - 1);
			for (int y = 0; y < n; y++) {
				const uint8_t *irow = src + ((size_t)ymin + y) * src_stride;
				int32_t ky = k[y];
				for (size_t i = 0; i < row_len; i++)
					acc[i] += irow[i] * ky;
			}
			for (size_t i = 0; i < row_len; i++)
				orow[i] = pil_clip8(acc[i]);
		}
	} else {
		for (int yy = 0; yy < win_h; yy++)
			memcpy(out->data + (size_t)yy * win_w * 3, src + (size_t)yy * src_stride,
			       (size_t)win_w * 3);
	}
	return QCAL_OK;
}

enum qcal_status preprocess_geometry(struct image_u8 *out, const struct image_u8 *in,
				     const struct preprocess_options *o,
				     struct preprocess_scratch *s,
				     struct qcal_err *err)
{
	int rs = o->resize_size ? o->resize_size : preprocess_default_resize_size(o->size);
	int rh, rw, top, left;

	if (in->h == o->size && in->w == o->size) {
		enum qcal_status st = image_reserve(out, in->h, in->w,
						    (size_t)in->h * in->w, "preprocess", err);
		if (st == QCAL_OK)
			memcpy(out->data, in->data, (size_t)in->h * in->w * 3);
		return st;
	}
	enum qcal_status st = preprocess_resized_dims(in->h, in->w, rs, &rh, &rw, err);
	if (st != QCAL_OK)
		return st;
	if (rh < o->size || rw < o->size)
		return qcal_err_set(err, QCAL_EINVAL,
				    "preprocess: %dx%d resized to %dx%d is smaller than the %d crop",
				    in->w, in->h, rw, rh, o->size);
	preprocess_center_crop_offsets(rh, rw, o->size, &top, &left);
	return preprocess_resize_window(out, in, rw, rh, left, top, o->size, o->size,
					o->interp, s, err);
}

void preprocess_lut_init(struct preprocess_lut *lut, const struct preprocess_options *o)
{
	for (int c = 0; c < 3; c++) {
		for (int p = 0; p < 256; p++) {
			if (o->norm == PREPROCESS_NORM_FOLDED) {
				lut->v[c][p] = ((float)p - 128.0f) / 128.0f;
			} else {
				/* ToTensor: float32 p / 255; Normalize: sub, div. */
				float x = (float)p / 255.0f;
				lut->v[c][p] = (x - o->mean[c]) / o->std[c];
			}
		}
	}
}

void preprocess_normalize(float *out, const uint8_t *hwc, int h, int w,
			  const struct preprocess_lut *lut)
{
	size_t plane = (size_t)h * w;

	for (size_t i = 0; i < plane; i++) {
		out[i] = lut->v[0][hwc[3 * i]];
		out[plane + i] = lut->v[1][hwc[3 * i + 1]];
		out[2 * plane + i] = lut->v[2][hwc[3 * i + 2]];
	}
}
