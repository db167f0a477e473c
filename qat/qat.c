/*
 * The QAT loop (see qat.h).
 *
 * State lives in flat buffers laid out by the parameter table (weights,
 * gradients, optimizer moments) and in one vector of learnable scales
 * (qat/lsq.h), so a checkpoint is a handful of arrays plus counters.  The
 * scale table is the single source of quantization parameters: each step
 * writes the current scales into it and refreshes the qparams views the
 * forward reads.
 */
#include "qat/qat.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/analysis.h"
#include "calib/qmodel.h"
#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/finite.h"
#include "core/h5.h"
#include "datasets/loader.h"
#include "model/fakequant.h"
#include "model/fakequant_backward.h"
#include "model/loss.h"
#include "model/swin_backward.h"
#include "model/swin_forward.h"
#include "observers/qparams.h"
#include "qat/lsq.h"

#define LOG_MAX (1 << 20)

void qat_options_default(struct qat_options *o)
{
	memset(o, 0, sizeof(*o));
	o->epochs = 1.0;
	o->batch = 64;
	o->workers = 2;
	optim_config_default(&o->weights, OPTIM_ADAMW);
	o->weights.lr = 3e-5;  /* the best of the j5 sweeps (docs/BENCHMARKS.md) */
	o->weights.weight_decay = 0.05;
	optim_config_default(&o->scales, OPTIM_ADAMW);
	o->scales.lr = 1e-2;   /* log-space: ~1% per step at the peak */
	o->scales.weight_decay = 0.0;
	o->warmup_steps = 50;
	o->min_lr_ratio = 0.0;
	o->distill = 1.0;
	o->distill_loss = QAT_DISTILL_KL;
	o->temperature = 1.0;
	o->label_smoothing = 0.0;
	o->act_scales = QAT_ACT_LSQ;
	o->weight_scales = QAT_WEIGHT_LSQ;
	o->ema_constant = 0.01;
	o->augment = true;
	o->pad = 4;
	o->checkpoint_every = 200;
	o->log_every = 20;
	o->eval_every = 0;
	o->eval_images = 0;
}

struct qat_session {
	struct qat_options opt;
	char *out_dir;
	const struct dataset *train;
	struct swin_model master;        /* float master weights (folded like the scales) */
	struct swin_model teacher;       /* the original float model, same folding */
	struct qp_table table;
	struct scale_table st;           /* current scales */
	struct qp_qparams *qparams;      /* views into st, refreshed every step */
	float *wq;                       /* fake-quantized weights (table.numel) */
	struct swin_weights wq_w;
	float *grads;
	struct swin_weights grads_w;
	struct lsq_params lsq;
	float *lsq_grad;
	uint8_t *decay;                  /* weight decay mask over the parameters */
	struct optim_state wstate, sstate;
	struct lr_schedule wsched, ssched;
	struct swin_plan plan, teacher_plan;
	struct swin_backward_plan bp;
	struct swin_qat_state qs;
	struct qp_ctx ctx;
	float *dlogits, *teacher_logits;
	double *ema_min, *ema_max;       /* [count], NAN until first seen */
	long step, total_steps, steps_per_epoch;
	long epoch, batch_in_epoch;      /* position of the next step */
	char *log;                       /* CSV text of the run so far */
	size_t log_len;
	double loss_sum, ce_sum, kd_sum;
	long loss_count;
};

long qat_session_step(const struct qat_session *s)
{
	return s->step;
}

long qat_session_total_steps(const struct qat_session *s)
{
	return s->total_steps;
}

static void log_append(struct qat_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void log_append(struct qat_session *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->log_len >= LOG_MAX - 256)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->log + s->log_len, LOG_MAX - s->log_len, fmt, ap);
	va_end(ap);
	if (n > 0)
		s->log_len += (size_t)n < LOG_MAX - s->log_len ? (size_t)n : 0;
}

static char *path_in(const struct qat_session *s, const char *name)
{
	size_t n = strlen(s->out_dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", s->out_dir, name);
	return p;
}

/* Per-channel symmetric/affine scales from the current master weights. */
static void recompute_weight_scales(struct qat_session *s, int i)
{
	const struct qp_point *pt = &s->table.points[i];
	struct scale_point *sp = &s->st.points[i];
	const struct swin_param_spec *spec = &s->master.table.specs[pt->param_index];
	size_t inner = spec->numel / (size_t)sp->channels;
	const float *w = s->master.params + spec->offset;

	for (int c = 0; c < sp->channels; c++) {
		float lo = 0, hi = 0, scale;
		int32_t zp;
		for (size_t k = 0; k < inner; k++) {
			float v = w[c * inner + k];
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
		}
		if (qparams_from_range(sp->dtype, sp->symmetric, 1.1920929e-07f, lo, hi, &scale, &zp,
				       NULL) == QCAL_OK) {
			sp->scales[c] = scale;
			sp->zero_points[c] = zp;
		}
	}
}

/* Scales into the table, then fake-quantized weights into wq. */
static void prepare_step(struct qat_session *s)
{
	const struct qp_table *t = &s->table;

	lsq_params_store(&s->lsq, &s->st);
	memcpy(s->wq, s->master.params, s->master.table.numel * sizeof(float));
	for (int i = 0; i < t->count; i++) {
		const struct qp_point *pt = &t->points[i];
		struct scale_point *sp = &s->st.points[i];
		if (pt->role != QP_ROLE_WEIGHT || !sp->quantized)
			continue;
		if (s->opt.weight_scales == QAT_WEIGHT_MINMAX)
			recompute_weight_scales(s, i);
		const struct swin_param_spec *spec = &s->master.table.specs[pt->param_index];
		fq_per_channel(s->wq + spec->offset, sp->channels, spec->numel / (size_t)sp->channels,
			       sp->scales, sp->zero_points, sp->qmin, sp->qmax);
	}
	scale_table_qparams(&s->st, s->qparams);
}

/* After the forward: moving-average ranges from the pre-quant tensors. */
static void update_ema(struct qat_session *s, int batch)
{
	const struct qp_table *t = &s->table;

	for (int i = 0; i < t->count; i++) {
		const struct qp_point *pt = &t->points[i];
		struct scale_point *sp = &s->st.points[i];
		const float *x = s->qs.saved[i];
		if (!x || !sp->quantized || sp->fixed || pt->role == QP_ROLE_WEIGHT)
			continue;
		size_t n = pt->numel * (pt->role == QP_ROLE_ACTIVATION ? (size_t)batch : 1);
		float lo = INFINITY, hi = -INFINITY;
		for (size_t k = 0; k < n; k++) {
			lo = x[k] < lo ? x[k] : lo;
			hi = x[k] > hi ? x[k] : hi;
		}
		if (!isfinite(lo) || !isfinite(hi))
			continue;
		if (isnan(s->ema_min[i])) {
			s->ema_min[i] = lo;
			s->ema_max[i] = hi;
		} else {
			s->ema_min[i] += s->opt.ema_constant * (lo - s->ema_min[i]);
			s->ema_max[i] += s->opt.ema_constant * (hi - s->ema_max[i]);
		}
		float scale;
		int32_t zp;
		if (qparams_from_range(sp->dtype, sp->symmetric, 1.1920929e-07f, (float)s->ema_min[i],
				       (float)s->ema_max[i], &scale, &zp, NULL) == QCAL_OK) {
			sp->scales[0] = scale;
			sp->zero_points[0] = zp;
		}
	}
}

/* One optimisation step on a batch; returns the loss parts. */
static enum qcal_status train_step(struct qat_session *s, const struct loader_batch *b,
				   double *loss, double *ce, double *kd, struct qcal_err *err)
{
	const int B = b->count, K = s->master.cfg.num_classes;
	const struct qp_table *t = &s->table;
	enum qcal_status st;
	bool labelled = true;

	for (int i = 0; i < B; i++)
		labelled &= b->labels[i] >= 0;
	prepare_step(s);
	if (s->opt.distill > 0) {
		st = swin_forward(&s->teacher_plan, &s->teacher, NULL, NULL, b->images, B, err);
		if (st != QCAL_OK)
			return st;
		memcpy(s->teacher_logits, s->teacher_plan.logits, (size_t)B * K * sizeof(float));
		/* a non-finite target would surface as a NaN loss blamed on the
		 * learning rate; say where it really comes from */
		size_t nl = (size_t)B * K, i = qcal_first_non_finite(s->teacher_logits, nl, NULL);
		if (i < nl)
			return qcal_err_set(err, QCAL_ERANGE,
					    "QAT: the float model's logits are not finite (%g) for "
					    "image %zu of the batch at step %ld: a NaN or Inf input, "
					    "or activations beyond float32",
					    (double)s->teacher_logits[i], i / (size_t)K, (long)s->step);
	}
	st = swin_forward(&s->plan, &s->master, &s->wq_w, &s->ctx, b->images, B, err);
	if (st != QCAL_OK)
		return st;
	memset(s->dlogits, 0, (size_t)B * K * sizeof(float));
	*ce = *kd = 0;
	double ce_weight = labelled ? 1.0 - s->opt.distill : 0.0;
	if (!labelled && s->opt.distill <= 0)
		return qcal_err_set(err, QCAL_EINVAL,
				    "QAT: unlabelled training images need distillation (--distill > 0)");
	if (ce_weight > 0) {
		st = loss_cross_entropy(ce, s->dlogits, s->plan.logits, b->labels, B, K,
					s->opt.label_smoothing, ce_weight, err);
		if (st != QCAL_OK)
			return st;
	}
	if (s->opt.distill > 0) {
		st = s->opt.distill_loss == QAT_DISTILL_MSE
			     ? loss_logit_mse(kd, s->dlogits, s->plan.logits, s->teacher_logits, B, K,
					      s->opt.distill, err)
			     : loss_distillation(kd, s->dlogits, s->plan.logits, s->teacher_logits,
						 B, K, s->opt.temperature, s->opt.distill, err);
		if (st != QCAL_OK)
			return st;
	}
	*loss = ce_weight * *ce + s->opt.distill * *kd;
	if (!isfinite(*loss))
		return qcal_err_set(err, QCAL_ERANGE,
				    "QAT: loss became %g at step %ld (learning rate too high?)", *loss, s->step);
	memset(s->grads, 0, s->master.table.numel * sizeof(float));
	swin_qat_zero_dscale(&s->qs);
	st = swin_backward(&s->bp, &s->plan, &s->master, &s->wq_w, &s->ctx, s->dlogits, B,
			   &s->grads_w, NULL, err);
	if (st != QCAL_OK)
		return st;
	/* weights: straight-through gradients, LSQ gradients for their scales */
	memset(s->lsq_grad, 0, s->lsq.n * sizeof(float));
	for (int i = 0; i < t->count; i++) {
		const struct qp_point *pt = &t->points[i];
		struct scale_point *sp = &s->st.points[i];
		if (!sp->quantized)
			continue;
		if (pt->role == QP_ROLE_WEIGHT) {
			const struct swin_param_spec *spec = &s->master.table.specs[pt->param_index];
			size_t inner = spec->numel / (size_t)sp->channels;
			int off = s->lsq.offset[i];
			fq_weight_backward_per_channel(s->grads + spec->offset,
						       s->master.params + spec->offset,
						       sp->channels, inner, sp->scales, sp->zero_points,
						       sp->qmin, sp->qmax,
						       (float)fq_lsq_grad_factor(inner, sp->qmax),
						       off >= 0 ? s->lsq_grad + off : NULL);
		} else if (s->lsq.offset[i] >= 0) {
			s->lsq_grad[s->lsq.offset[i]] = s->qs.dscale[i];
		}
	}
	lsq_params_to_log_grad(&s->lsq, s->lsq_grad);
	double lr_w = lr_at(&s->wsched, s->step), lr_s = lr_at(&s->ssched, s->step);
	optim_step(&s->opt.weights, &s->wstate, s->master.params, s->grads, s->decay, lr_w);
	if (s->lsq.n)
		optim_step(&s->opt.scales, &s->sstate, s->lsq.values, s->lsq_grad, NULL, lr_s);
	if (s->opt.act_scales == QAT_ACT_EMA)
		update_ema(s, B);
	return QCAL_OK;
}

/* ---------- checkpoints ---------- */

static int write_array(hid_t f, const char *name, const float *x, size_t n)
{
	int64_t d = (int64_t)n;
	return qcal_h5_write_float(f, name, x, 1, &d);
}

static int write_doubles_as_float(hid_t f, const char *name, const double *x, size_t n)
{
	/* EMA ranges: kept exactly by splitting into float hi + lo parts */
	float *buf = malloc((2 * n + 1) * sizeof(float));
	int rc;
	if (!buf)
		return -1;
	for (size_t i = 0; i < n; i++) {
		buf[2 * i] = (float)x[i];
		buf[2 * i + 1] = (float)(x[i] - (double)buf[2 * i]);
	}
	rc = write_array(f, name, buf, 2 * n);
	free(buf);
	return rc;
}

static char *options_fingerprint(const struct qat_session *s)
{
	char *fp = malloc(512);
	if (fp)
		snprintf(fp, 512,
			 "batch=%d epochs=%.6g wlr=%.6g slr=%.6g wopt=%s sopt=%s wd=%.6g warmup=%ld "
			 "distill=%.6g dloss=%d T=%.6g ls=%.6g act=%d wscales=%d aug=%d pad=%d seed=%llu n=%zu",
			 s->opt.batch, s->opt.epochs, s->opt.weights.lr, s->opt.scales.lr,
			 optim_kind_name(s->opt.weights.kind), optim_kind_name(s->opt.scales.kind),
			 s->opt.weights.weight_decay, s->opt.warmup_steps, s->opt.distill,
			 s->opt.distill_loss, s->opt.temperature, s->opt.label_smoothing, s->opt.act_scales,
			 s->opt.weight_scales, s->opt.augment, s->opt.pad,
			 (unsigned long long)s->opt.seed, s->train->count);
	return fp;
}

static enum qcal_status write_checkpoint(struct qat_session *s, struct qcal_err *err)
{
	char *path = path_in(s, "checkpoint.h5");
	char *fp = options_fingerprint(s);
	enum qcal_status st = QCAL_OK;
	int rc = 0;
	hid_t f;
	char num[64];

	if (!path || !fp) {
		st = qcal_err_set(err, QCAL_ENOMEM, "QAT checkpoint: out of memory");
		goto out;
	}
	f = qcal_h5_create(path, err);
	if (f < 0) {
		st = QCAL_ENOMEM;
		goto out;
	}
	size_t np = s->master.table.numel;
	rc |= write_array(f, "master", s->master.params, np);
	rc |= write_array(f, "lsq", s->lsq.values, s->lsq.n);
	rc |= write_array(f, "weights_m", s->wstate.m, np);
	rc |= write_array(f, "weights_v", s->wstate.v, np);
	rc |= write_array(f, "scales_m", s->sstate.m, s->lsq.n);
	rc |= write_array(f, "scales_v", s->sstate.v, s->lsq.n);
	rc |= write_doubles_as_float(f, "ema_min", s->ema_min, (size_t)s->table.count);
	rc |= write_doubles_as_float(f, "ema_max", s->ema_max, (size_t)s->table.count);
	/* EMA-mode scales live only in the table: keep them too */
	size_t nact = 0;
	for (int i = 0; i < s->table.count; i++)
		nact += s->st.points[i].quantized ? (size_t)s->st.points[i].channels : 0;
	float *all = malloc((nact ? nact : 1) * sizeof(float));
	float *zps = malloc((nact ? nact : 1) * sizeof(float));
	if (!all || !zps) {
		free(all);
		free(zps);
		qcal_h5_discard(f);
		st = qcal_err_set(err, QCAL_ENOMEM, "QAT checkpoint: out of memory");
		goto out;
	}
	for (int i = 0, k = 0; i < s->table.count; i++)
		for (int c = 0; s->st.points[i].quantized && c < s->st.points[i].channels; c++, k++) {
			all[k] = s->st.points[i].scales[c];
			zps[k] = (float)s->st.points[i].zero_points[c];
		}
	rc |= write_array(f, "table_scales", all, nact);
	rc |= write_array(f, "table_zero_points", zps, nact);
	free(all);
	free(zps);
#define PUT(name, v) (snprintf(num, sizeof(num), "%lld", (long long)(v)), \
		      qcal_h5_write_string_attr(f, name, num))
	rc |= PUT("step", s->step);
	rc |= PUT("epoch", s->epoch);
	rc |= PUT("batch_in_epoch", s->batch_in_epoch);
	rc |= PUT("weights_step", s->wstate.step);
	rc |= PUT("scales_step", s->sstate.step);
#undef PUT
	rc |= qcal_h5_write_string_attr(f, "options", fp);
	s->log[s->log_len] = '\0';
	rc |= qcal_h5_write_string_attr(f, "log", s->log);
	if (rc) {
		qcal_h5_discard(f);
		st = qcal_err_set(err, QCAL_EIO, "%s: building the checkpoint failed (out of memory?)",
				  path);
		goto out;
	}
	st = qcal_h5_commit(f, path, err);
	if (st == QCAL_OK) {
		char *log_path = path_in(s, "log.csv");
		if (log_path)
			st = qcal_write_file_atomic(log_path, s->log, s->log_len, err);
		free(log_path);
	}
out:
	free(fp);
	free(path);
	return st;
}

static enum qcal_status read_exact(hid_t f, const char *path, const char *name, float *dst,
				   size_t n, struct qcal_err *err)
{
	float *buf;
	struct qcal_h5_shape shape;
	enum qcal_status st = qcal_h5_read_float(f, path, name, &buf, &shape, err);

	if (st != QCAL_OK)
		return st;
	if (qcal_h5_shape_numel(&shape) != n) {
		free(buf);
		return qcal_err_set(err, QCAL_EFORMAT, "%s: %s has %zu values, expected %zu",
				    path, name, qcal_h5_shape_numel(&shape), n);
	}
	memcpy(dst, buf, n * sizeof(float));
	free(buf);
	return QCAL_OK;
}

static long attr_long(hid_t f, const char *name, bool *ok)
{
	char *v = qcal_h5_read_string_attr(f, name), *end;
	long x = v ? strtol(v, &end, 10) : 0;
	if (!v || *end)
		*ok = false;
	free(v);
	return x;
}

static enum qcal_status read_checkpoint(struct qat_session *s, struct qcal_err *err)
{
	char *path = path_in(s, "checkpoint.h5"), *fp = options_fingerprint(s);
	enum qcal_status st = QCAL_OK;
	hid_t f;
	bool ok = true;

	if (!path || !fp) {
		free(path);
		free(fp);
		return qcal_err_set(err, QCAL_ENOMEM, "out of memory");
	}
	f = qcal_h5_open_read(path, err);
	if (f < 0) {
		st = err ? err->status : QCAL_EIO;
		qcal_err_prefix(err, "--resume: ");
		goto out;
	}
	char *saved_fp = qcal_h5_read_string_attr(f, "options");
	if (!saved_fp || strcmp(saved_fp, fp)) {
		st = qcal_err_set(err, QCAL_EINVAL,
				  "%s: written with other options (%s), this run has (%s)", path,
				  saved_fp ? saved_fp : "none", fp);
		free(saved_fp);
		goto out_close;
	}
	free(saved_fp);
	size_t np = s->master.table.numel, n = (size_t)s->table.count;
	if ((st = read_exact(f, path, "master", s->master.params, np, err)) ||
	    (st = read_exact(f, path, "lsq", s->lsq.values, s->lsq.n, err)) ||
	    (st = read_exact(f, path, "weights_m", s->wstate.m, np, err)) ||
	    (st = read_exact(f, path, "weights_v", s->wstate.v, np, err)) ||
	    (st = read_exact(f, path, "scales_m", s->sstate.m, s->lsq.n, err)) ||
	    (st = read_exact(f, path, "scales_v", s->sstate.v, s->lsq.n, err)))
		goto out_close;
	float *ema = malloc(4 * n * sizeof(float));
	size_t nact = 0;
	for (int i = 0; i < s->table.count; i++)
		nact += s->st.points[i].quantized ? (size_t)s->st.points[i].channels : 0;
	float *all = malloc(2 * (nact ? nact : 1) * sizeof(float));
	if (!ema || !all) {
		free(ema);
		free(all);
		st = qcal_err_set(err, QCAL_ENOMEM, "out of memory");
		goto out_close;
	}
	if (!(st = read_exact(f, path, "ema_min", ema, 2 * n, err)) &&
	    !(st = read_exact(f, path, "ema_max", ema + 2 * n, 2 * n, err)) &&
	    !(st = read_exact(f, path, "table_scales", all, nact, err)) &&
	    !(st = read_exact(f, path, "table_zero_points", all + nact, nact, err))) {
		for (size_t i = 0; i < n; i++) {
			s->ema_min[i] = (double)ema[2 * i] + (double)ema[2 * i + 1];
			s->ema_max[i] = (double)ema[2 * n + 2 * i] + (double)ema[2 * n + 2 * i + 1];
		}
		for (int i = 0, k = 0; i < s->table.count; i++)
			for (int c = 0; s->st.points[i].quantized && c < s->st.points[i].channels; c++, k++) {
				s->st.points[i].scales[c] = all[k];
				s->st.points[i].zero_points[c] = (int32_t)all[nact + k];
			}
	}
	free(ema);
	free(all);
	if (st != QCAL_OK)
		goto out_close;
	s->step = attr_long(f, "step", &ok);
	s->epoch = attr_long(f, "epoch", &ok);
	s->batch_in_epoch = attr_long(f, "batch_in_epoch", &ok);
	s->wstate.step = attr_long(f, "weights_step", &ok);
	s->sstate.step = attr_long(f, "scales_step", &ok);
	char *log = qcal_h5_read_string_attr(f, "log");
	if (!ok || !log) {
		free(log);
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: missing or bad counters", path);
		goto out_close;
	}
	s->log_len = strlen(log) < LOG_MAX - 1 ? strlen(log) : LOG_MAX - 1;
	memcpy(s->log, log, s->log_len);
	free(log);
out_close:
	H5Fclose(f);
out:
	free(fp);
	free(path);
	return st;
}

/* ---------- session ---------- */

enum qcal_status qat_session_create(struct qat_session **out,
				    const struct swin_model *model,
				    const struct scale_table *scales,
				    const struct dataset *train,
				    const struct qat_options *opt,
				    const char *out_dir, bool resume,
				    struct qcal_err *err)
{
	struct qat_session *s = calloc(1, sizeof(*s));
	enum qcal_status st;

	*out = NULL;
	if (!s)
		return qcal_err_set(err, QCAL_ENOMEM, "QAT: out of memory");
	s->opt = *opt;
	s->train = train;
	s->out_dir = strdup(out_dir);
	s->log = malloc(LOG_MAX);
	if (!s->out_dir || !s->log) {
		st = qcal_err_set(err, QCAL_ENOMEM, "QAT: out of memory");
		goto out_fail;
	}
	if (!(opt->epochs > 0) || opt->batch < 1) {
		st = qcal_err_set(err, QCAL_EINVAL, "QAT: epochs and batch must be positive");
		goto out_fail;
	}
	if ((st = swin_model_clone(&s->master, model, err)) ||
	    (st = swin_model_clone(&s->teacher, model, err)))
		goto out_fail;
	if (scales->input_folded) {
		swin_model_fold_input_norm(&s->master);
		swin_model_fold_input_norm(&s->teacher);
	}
	if ((st = qp_table_init(&s->table, &s->master.cfg, &s->master.table, err)) ||
	    (st = scale_table_copy(&s->st, scales, err)))
		goto out_fail;
	s->st.table = &s->table;
	/*
	 * Only narrow points learn their scale: int16 and int32 ranges are
	 * wide enough that their rounding error is negligible, and LSQ on them
	 * only adds noise.  They still fake-quantize (with the STE).
	 */
	for (int i = 0; i < s->table.count; i++) {
		struct scale_point *sp = &s->st.points[i];
		bool narrow = sp->quantized && qcal_dtype_bits(sp->dtype) <= 8;
		if (s->table.points[i].role == QP_ROLE_WEIGHT)
			sp->learnable = narrow && opt->weight_scales == QAT_WEIGHT_LSQ;
		else
			sp->learnable = narrow && sp->learnable && !sp->fixed &&
					opt->act_scales == QAT_ACT_LSQ;
	}
	size_t np = s->master.table.numel;
	int count = s->table.count;
	s->qparams = calloc((size_t)count, sizeof(*s->qparams));
	s->wq = malloc(np * sizeof(float));
	s->grads = malloc(np * sizeof(float));
	s->decay = malloc(np);
	s->ema_min = malloc((size_t)count * sizeof(double));
	s->ema_max = malloc((size_t)count * sizeof(double));
	int K = s->master.cfg.num_classes;
	s->dlogits = malloc((size_t)opt->batch * K * sizeof(float));
	s->teacher_logits = malloc((size_t)opt->batch * K * sizeof(float));
	if (!s->qparams || !s->wq || !s->grads || !s->decay || !s->ema_min || !s->ema_max ||
	    !s->dlogits || !s->teacher_logits) {
		st = qcal_err_set(err, QCAL_ENOMEM, "QAT: out of memory");
		goto out_fail;
	}
	for (int i = 0; i < count; i++)
		s->ema_min[i] = s->ema_max[i] = NAN;
	for (int i = 0; i < s->master.table.count; i++) {
		const struct swin_param_spec *ps = &s->master.table.specs[i];
		memset(s->decay + ps->offset,
		       ps->kind == SWIN_PARAM_CONV_WEIGHT || ps->kind == SWIN_PARAM_LINEAR_WEIGHT,
		       ps->numel);
	}
	if ((st = swin_weights_bind(&s->wq_w, &s->master.cfg, &s->master.table, s->wq)) ||
	    (st = swin_weights_bind(&s->grads_w, &s->master.cfg, &s->master.table, s->grads))) {
		st = qcal_err_set(err, QCAL_ENOMEM, "QAT: out of memory");
		goto out_fail;
	}
	if ((st = lsq_params_init(&s->lsq, &s->st, err)))
		goto out_fail;
	s->lsq_grad = calloc(s->lsq.n ? s->lsq.n : 1, sizeof(float));
	if (!s->lsq_grad) {
		st = qcal_err_set(err, QCAL_ENOMEM, "QAT: out of memory");
		goto out_fail;
	}
	if ((st = optim_state_init(&s->wstate, np, err)) ||
	    (st = optim_state_init(&s->sstate, s->lsq.n, err)))
		goto out_fail;
	scale_table_qparams(&s->st, s->qparams);
	if ((st = swin_plan_init(&s->plan, &s->master.cfg, opt->batch,
				 SWIN_PLAN_TRAIN | SWIN_PLAN_DECOMPOSED, opt->threads, NULL, err)) ||
	    (st = swin_plan_init(&s->teacher_plan, &s->master.cfg, opt->batch, 0, opt->threads,
				 NULL, err)) ||
	    (st = swin_backward_plan_init(&s->bp, &s->plan, err)) ||
	    (st = swin_qat_state_init(&s->qs, &s->table, s->qparams, opt->batch, err)))
		goto out_fail;
	for (int i = 0; i < count; i++)
		s->qs.learnable[i] = s->table.points[i].role != QP_ROLE_WEIGHT &&
				     s->st.points[i].quantized && s->st.points[i].learnable;
	s->ctx.mode = QP_MODE_QAT;
	s->ctx.table = &s->table;
	s->ctx.qparams = s->qparams;
	s->ctx.threads = opt->threads;
	swin_qat_state_attach(&s->qs, &s->ctx);
	s->steps_per_epoch = (long)((train->count + (size_t)opt->batch - 1) / (size_t)opt->batch);
	s->total_steps = (long)ceil(opt->epochs * (double)s->steps_per_epoch);
	s->wsched = (struct lr_schedule){ opt->weights.lr, opt->weights.lr * opt->min_lr_ratio,
					  opt->warmup_steps, s->total_steps };
	s->ssched = (struct lr_schedule){ opt->scales.lr, opt->scales.lr * opt->min_lr_ratio,
					  opt->warmup_steps, s->total_steps };
	log_append(s, "step,epoch,lr,loss,ce,kd,images_per_s,val_top1,val_agreement,val_sqnr_db\n");
	if (resume) {
		s->log_len = 0;
		st = read_checkpoint(s, err);
		if (st != QCAL_OK)
			goto out_fail;
	}
	*out = s;
	return QCAL_OK;
out_fail:
	qat_session_free(s);
	return st;
}

void qat_session_free(struct qat_session *s)
{
	if (!s)
		return;
	swin_qat_state_free(&s->qs);
	swin_backward_plan_free(&s->bp);
	swin_plan_free(&s->teacher_plan);
	swin_plan_free(&s->plan);
	optim_state_free(&s->wstate);
	optim_state_free(&s->sstate);
	lsq_params_free(&s->lsq);
	swin_weights_unbind(&s->wq_w);
	swin_weights_unbind(&s->grads_w);
	free(s->lsq_grad);
	free(s->qparams);
	free(s->wq);
	free(s->grads);
	free(s->decay);
	free(s->ema_min);
	free(s->ema_max);
	free(s->dlogits);
	free(s->teacher_logits);
	if (s->st.points)
		scale_table_free(&s->st);
	qp_table_free(&s->table);
	swin_model_free(&s->teacher);
	swin_model_free(&s->master);
	free(s->log);
	free(s->out_dir);
	free(s);
}

enum qcal_status qat_session_evaluate(struct qat_session *s, eval_next_fn next,
				      void *user, struct metrics *m, struct qcal_err *err)
{
	struct qmodel qm;
	enum qcal_status st;

	lsq_params_store(&s->lsq, &s->st);
	st = qmodel_init(&qm, &s->master, &s->st, s->opt.threads, err);
	if (st != QCAL_OK)
		return st;
	st = qmodel_set_reference(&qm, &s->teacher, err);
	if (st == QCAL_OK) {
		struct eval_options eo = { .batch = s->opt.batch, .threads = s->opt.threads };
		st = eval_run(&qm.float_model, &qm, next, user, &eo, m, err);
	}
	qmodel_free(&qm);
	return st;
}

static enum qcal_status open_epoch(struct qat_session *s, struct loader **ld,
				   struct qcal_err *err)
{
	struct preprocess_options pre;
	struct loader_options lo;
	struct augment_options aug = { .pad = s->opt.pad, .pad_mode = AUGMENT_PAD_REFLECT,
				       .hflip = true, .seed = s->opt.seed };

	preprocess_options_init(&pre, s->master.cfg.img_size, s->master.cfg.mean, s->master.cfg.std);
	pre.norm = s->st.input_folded ? PREPROCESS_NORM_FOLDED : PREPROCESS_NORM_MEAN_STD;
	loader_options_init(&lo, s->opt.batch, s->opt.workers > 0 ? s->opt.workers : 2, &pre);
	lo.augment = s->opt.augment ? &aug : NULL;
	lo.shuffle = true;
	lo.shuffle_seed = s->opt.seed;
	lo.epoch = (uint64_t)s->epoch;
	lo.first_batch = (size_t)s->batch_in_epoch;
	return loader_open(ld, s->train, &lo, err);
}

enum qcal_status qat_session_run(struct qat_session *s, eval_next_fn val_next,
				 void *val_user, void (*val_rewind)(void *),
				 struct qcal_err *err)
{
	enum qcal_status st = QCAL_OK;
	struct loader *ld = NULL;
	double t_last = qcal_now();
	long images_since = 0;
	char status[160];

	while (s->step < s->total_steps) {
		struct loader_batch b;
		if (!ld) {
			st = open_epoch(s, &ld, err);
			if (st != QCAL_OK)
				break;
		}
		st = loader_next(ld, &b, err);
		if (st != QCAL_OK)
			break;
		if (b.count == 0) {
			loader_close(ld);
			ld = NULL;
			s->epoch++;
			s->batch_in_epoch = 0;
			continue;
		}
		double loss = 0, ce = 0, kd = 0;
		st = train_step(s, &b, &loss, &ce, &kd, err);
		if (st != QCAL_OK)
			break;
		s->step++;
		s->batch_in_epoch = (long)b.number + 1;
		s->loss_sum += loss;
		s->ce_sum += ce;
		s->kd_sum += kd;
		s->loss_count++;
		images_since += b.count;
		bool eval_now = val_next && s->opt.eval_every > 0 && s->step % s->opt.eval_every == 0;
		if (s->step % s->opt.log_every == 0 || s->step == s->total_steps || eval_now) {
			double now = qcal_now(), ips = images_since / (now - t_last);
			struct metrics vm;
			log_append(s, "%ld,%.4f,%.6g,%.6f,%.6f,%.6f,%.1f", s->step,
				   (double)s->step / (double)s->steps_per_epoch,
				   lr_at(&s->wsched, s->step - 1), s->loss_sum / s->loss_count,
				   s->ce_sum / s->loss_count, s->kd_sum / s->loss_count, ips);
			if (eval_now) {
				val_rewind(val_user);
				st = qat_session_evaluate(s, val_next, val_user, &vm, err);
				if (st != QCAL_OK)
					break;
				log_append(s, ",%.6f,%.6f,%.4f\n", metrics_top1(&vm),
					   metrics_agreement(&vm), metrics_sqnr_db(&vm));
				snprintf(status, sizeof(status),
					 "loss %.4f lr %.2e val top-1 %.2f%% agree %.2f%%",
					 s->loss_sum / s->loss_count, lr_at(&s->wsched, s->step - 1),
					 100 * metrics_top1(&vm), 100 * metrics_agreement(&vm));
			} else {
				log_append(s, ",,,\n");
				snprintf(status, sizeof(status), "loss %.4f lr %.2e",
					 s->loss_sum / s->loss_count, lr_at(&s->wsched, s->step - 1));
			}
			s->loss_sum = s->ce_sum = s->kd_sum = 0;
			s->loss_count = 0;
			images_since = 0;
			t_last = qcal_now();
		} else {
			snprintf(status, sizeof(status), "loss %.4f lr %.2e", loss,
				 lr_at(&s->wsched, s->step - 1));
		}
		bool stop = qcal_progress_report(&s->opt.progress, (size_t)s->step,
						 (size_t)s->total_steps, status);
		if ((s->opt.checkpoint_every > 0 && s->step % s->opt.checkpoint_every == 0) || stop ||
		    s->step == s->total_steps) {
			st = write_checkpoint(s, err);
			if (st != QCAL_OK)
				break;
		}
		if (stop) {
			st = qcal_err_set(err, QCAL_ECANCEL,
					  "QAT stopped at step %ld of %ld; the checkpoint in %s resumes it (--resume)",
					  s->step, s->total_steps, s->out_dir);
			break;
		}
	}
	loader_close(ld);
	return st;
}

enum qcal_status qat_session_result(struct qat_session *s, const struct qp_table *points,
				    struct scale_table *scales, struct swin_model *model,
				    struct qcal_err *err)
{
	enum qcal_status st;

	lsq_params_store(&s->lsq, &s->st);
	st = scale_table_copy(scales, &s->st, err);
	if (st != QCAL_OK)
		return st;
	scales->table = points;
	free(scales->note);
	scales->note = strdup("refined by qcal qat");
	st = swin_model_clone(model, &s->master, err);
	if (st != QCAL_OK)
		scale_table_free(scales);
	return st;
}
