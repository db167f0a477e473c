/* Report data, JSON and the regression gate; see report.h. */
#include "calib/report.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

void report_init(struct report *r)
{
	memset(r, 0, sizeof(*r));
	metrics_init(&r->overall);
	metrics_init(&r->after_promotion);
}

void report_free(struct report *r)
{
	if (!r)
		return;
	free(r->model_file);
	free(r->scales_file);
	free(r->config_name);
	free(r->data);
	free(r->points);
	free(r->groups);
	for (int i = 0; i < r->num_promoted; i++)
		free(r->promoted[i]);
	free(r->promoted);
	free(r->promoted_config);
	memset(r, 0, sizeof(*r));
}

struct ranked {
	int index;
	double sqnr;
};

static int by_sqnr(const void *a, const void *b)
{
	const struct ranked *x = a, *y = b;
	if (x->sqnr != y->sqnr)
		return x->sqnr < y->sqnr ? -1 : 1;
	return x->index - y->index;
}

int report_worst_points(const struct report *r, int *indices, int max)
{
	const struct qp_table *t = r->scales->table;
	struct ranked *all = malloc((size_t)t->count * sizeof(*all));
	int n = 0;

	if (!all)
		return 0;
	for (int i = 0; i < t->count; i++)
		if (r->points && r->points[i].measured && r->scales->points[i].quantized &&
		    isfinite(point_error_sqnr_db(&r->points[i])))
			all[n++] = (struct ranked){ i, point_error_sqnr_db(&r->points[i]) };
	qsort(all, (size_t)n, sizeof(*all), by_sqnr);
	if (n > max)
		n = max;
	for (int i = 0; i < n; i++)
		indices[i] = all[i].index;
	free(all);
	return n;
}

static json_t *num(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *metrics_json(const struct metrics *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "images", json_integer(m->images));
	json_object_set_new(o, "top1", num(metrics_top1(m)));
	json_object_set_new(o, "top5", num(metrics_top5(m)));
	json_object_set_new(o, "float_top1", num(metrics_float_top1(m)));
	json_object_set_new(o, "float_top5",
			    num(m->labelled && m->has_float ? (double)m->float_top5 / m->labelled : NAN));
	json_object_set_new(o, "agreement", num(metrics_agreement(m)));
	json_object_set_new(o, "logit_sqnr_db", num(metrics_sqnr_db(m)));
	json_object_set_new(o, "logit_kl", num(metrics_mean_kl(m)));
	return o;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

enum qcal_status report_write_json(const struct report *r, const char *path,
				   struct qcal_err *err)
{
	const struct qp_table *t = r->scales->table;
	json_t *root = json_object(), *pts = json_array(), *groups = json_array();
	enum qcal_status st;
	int worst[16], nworst;

	json_object_set_new(root, "format", json_string(REPORT_FORMAT_NAME));
	json_object_set_new(root, "version", json_integer(REPORT_FORMAT_VERSION));
	json_object_set_new(root, "model", string_or_null(r->model_file));
	json_object_set_new(root, "scales", string_or_null(r->scales_file));
	json_object_set_new(root, "config", string_or_null(r->config_name));
	json_object_set_new(root, "data", string_or_null(r->data));
	json_object_set_new(root, "accuracy", metrics_json(&r->overall));
	json_object_set_new(root, "analysis_images", json_integer(r->analysis_images));
	for (int i = 0; r->points && i < t->count; i++) {
		const struct qp_point *q = &t->points[i];
		const struct scale_point *sp = &r->scales->points[i];
		const struct point_error *e = &r->points[i];
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(q->name));
		json_object_set_new(o, "kind", json_string(qp_kind_name(q->kind)));
		json_object_set_new(o, "dtype", json_string(qcal_dtype_name(sp->quantized ? sp->dtype : QCAL_DTYPE_FLOAT)));
		json_object_set_new(o, "scale", sp->quantized ? json_real(sp->scales[0]) : json_null());
		json_object_set_new(o, "sqnr_db", num(point_error_sqnr_db(e)));
		json_object_set_new(o, "cosine", num(point_error_cosine(e)));
		json_object_set_new(o, "sqnr_alone_db", num(point_error_sqnr_alone_db(e)));
		json_object_set_new(o, "cosine_alone", num(point_error_cosine_alone(e)));
		json_object_set_new(o, "clipped_fraction", num(point_error_clipped_fraction(e)));
		json_array_append_new(pts, o);
	}
	json_object_set_new(root, "points", pts);
	nworst = report_worst_points(r, worst, 16);
	json_t *w = json_array();
	for (int i = 0; i < nworst; i++)
		json_array_append_new(w, json_string(t->points[worst[i]].name));
	json_object_set_new(root, "worst_points", w);
	json_object_set_new(root, "sensitivity_images", json_integer(r->sensitivity_images));
	for (int g = 0; g < r->num_groups; g++) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(r->groups[g].name));
		json_object_set_new(o, "by", json_string(r->groups[g].by));
		json_object_set_new(o, "points", json_integer(r->groups[g].size));
		json_object_set_new(o, "only", metrics_json(&r->groups[g].only));
		json_object_set_new(o, "all_but", metrics_json(&r->groups[g].without));
		json_array_append_new(groups, o);
	}
	json_object_set_new(root, "sensitivity", groups);
	if (r->auto_precision) {
		json_t *ap = json_object(), *list = json_array();
		for (int i = 0; i < r->num_promoted; i++)
			json_array_append_new(list, json_string(r->promoted[i]));
		json_object_set_new(ap, "max_drop", json_real(r->max_drop));
		json_object_set_new(ap, "promoted_to_int16", list);
		json_object_set_new(ap, "result", metrics_json(&r->after_promotion));
		json_object_set_new(ap, "config", string_or_null(r->promoted_config));
		json_object_set_new(root, "auto_precision", ap);
	}
	char *text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(10) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
	size_t len = strlen(text);
	text[len] = '\n';
	st = qcal_write_file_atomic(path, text, len + 1, err);
	free(text);
	return st;
}

enum qcal_status report_baseline_load(struct report_baseline *b, const char *path,
				      struct qcal_err *err)
{
	json_error_t jerr;
	json_t *root, *pts, *item;
	size_t i;

	memset(b, 0, sizeof(*b));
	b->top1 = b->float_top1 = NAN;
	root = json_load_file(path, 0, &jerr);
	if (!root)
		return qcal_err_set(err, strstr(jerr.text, "unable to open") ? QCAL_ENOENT : QCAL_EFORMAT,
				    "%s: %s (line %d)", path, jerr.text, jerr.line);
	const char *format = json_string_value(json_object_get(root, "format"));
	json_t *version = json_object_get(root, "version");
	if (!format || strcmp(format, REPORT_FORMAT_NAME) || !json_is_integer(version) ||
	    json_integer_value(version) != REPORT_FORMAT_VERSION) {
		json_decref(root);
		return qcal_err_set(err, QCAL_EFORMAT,
				    "%s: not a qcal report of version %d (format/version keys)",
				    path, REPORT_FORMAT_VERSION);
	}
	json_t *acc = json_object_get(root, "accuracy");
	if (json_is_number(json_object_get(acc, "top1")))
		b->top1 = json_number_value(json_object_get(acc, "top1"));
	if (json_is_number(json_object_get(acc, "float_top1")))
		b->float_top1 = json_number_value(json_object_get(acc, "float_top1"));
	pts = json_object_get(root, "points");
	size_t n = json_is_array(pts) ? json_array_size(pts) : 0;
	b->names = calloc(n ? n : 1, sizeof(char *));
	b->sqnr_db = calloc(n ? n : 1, sizeof(double));
	if (!b->names || !b->sqnr_db) {
		json_decref(root);
		report_baseline_free(b);
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
	}
	json_array_foreach(pts, i, item) {
		const char *name = json_string_value(json_object_get(item, "name"));
		json_t *s = json_object_get(item, "sqnr_db");
		if (!name || !json_is_number(s))
			continue;
		b->names[b->num_points] = strdup(name);
		b->sqnr_db[b->num_points++] = json_number_value(s);
	}
	json_decref(root);
	return QCAL_OK;
}

void report_baseline_free(struct report_baseline *b)
{
	if (!b)
		return;
	for (int i = 0; i < b->num_points; i++)
		free(b->names[i]);
	free(b->names);
	free(b->sqnr_db);
	memset(b, 0, sizeof(*b));
}

bool report_gate(const struct report *r, const struct report_baseline *b,
		 const char *baseline_path, double max_drop, double max_sqnr_drop,
		 char *reason, size_t reason_size)
{
	double now = metrics_top1(&r->overall);

	if (isfinite(b->top1) && isfinite(now) && (b->top1 - now) * 100.0 > max_drop + 1e-9) {
		snprintf(reason, reason_size,
			 "top-1 dropped %.2f points (%.2f%% -> %.2f%%) against %s, more than --max-drop %.2f",
			 (b->top1 - now) * 100.0, b->top1 * 100.0, now * 100.0, baseline_path, max_drop);
		return false;
	}
	const struct qp_table *t = r->scales->table;
	double worst = 0;
	int worst_i = -1, worst_b = -1;
	for (int j = 0; r->points && j < b->num_points; j++) {
		int i = qp_table_find(t, b->names[j]);
		if (i < 0 || !r->points[i].measured)
			continue;
		double s = point_error_sqnr_db(&r->points[i]);
		if (!isfinite(s) || !isfinite(b->sqnr_db[j]))
			continue;
		double drop = b->sqnr_db[j] - s;
		if (drop > worst) {
			worst = drop;
			worst_i = i;
			worst_b = j;
		}
	}
	if (worst_i >= 0 && worst > max_sqnr_drop) {
		snprintf(reason, reason_size,
			 "SQNR of %s fell %.2f dB (%.2f -> %.2f dB) against %s, more than --max-sqnr-drop %.2f",
			 t->points[worst_i].name, worst, b->sqnr_db[worst_b],
			 point_error_sqnr_db(&r->points[worst_i]), baseline_path, max_sqnr_drop);
		return false;
	}
	snprintf(reason, reason_size, "top-1 %.2f%% (baseline %.2f%%), worst point SQNR drop %.2f dB: within limits",
		 now * 100.0, b->top1 * 100.0, worst);
	return true;
}
