/*
 * Scale file reading and writing (see scales.h).  The JSON reader is strict
 * in the same way the checkpoint loader is: unknown keys, missing points,
 * duplicate points, shape mismatches and non-finite or non-positive scales
 * are errors that name the file and the point.
 */
#include "calib/scales.h"

#include <hdf5.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "core/h5.h"
#include "model/fakequant.h"

enum qcal_status scale_table_init(struct scale_table *st,
				  const struct qp_table *table,
				  struct qcal_err *err)
{
	memset(st, 0, sizeof(*st));
	st->table = table;
	st->points = calloc((size_t)table->count, sizeof(*st->points));
	if (!st->points)
		return qcal_err_set(err, QCAL_ENOMEM, "scale table: out of memory");
	for (int i = 0; i < table->count; i++) {
		struct scale_point *p = &st->points[i];
		p->dtype = QCAL_DTYPE_FLOAT;
		p->observed_min = p->observed_max = NAN;
		p->clip_min = p->clip_max = NAN;
		p->channels = 1;
	}
	return QCAL_OK;
}

void scale_table_free(struct scale_table *st)
{
	if (!st)
		return;
	for (int i = 0; st->points && i < st->table->count; i++) {
		free(st->points[i].scales);
		free(st->points[i].zero_points);
	}
	free(st->points);
	free(st->model_name);
	free(st->model_file);
	free(st->config_name);
	free(st->config_file);
	free(st->data);
	free(st->note);
	memset(st, 0, sizeof(*st));
}

enum qcal_status scale_point_set(struct scale_point *p, enum qcal_dtype dtype,
				 bool symmetric, int channels,
				 const float *scales, const int32_t *zero_points,
				 struct qcal_err *err)
{
	float *s = malloc((size_t)channels * sizeof(float));
	int32_t *z = malloc((size_t)channels * sizeof(int32_t));

	if (!s || !z) {
		free(s);
		free(z);
		return qcal_err_set(err, QCAL_ENOMEM, "scale table: out of memory");
	}
	memcpy(s, scales, (size_t)channels * sizeof(float));
	if (zero_points)
		memcpy(z, zero_points, (size_t)channels * sizeof(int32_t));
	else
		memset(z, 0, (size_t)channels * sizeof(int32_t));
	free(p->scales);
	free(p->zero_points);
	p->scales = s;
	p->zero_points = z;
	p->channels = channels;
	p->dtype = dtype;
	p->quantized = dtype != QCAL_DTYPE_FLOAT;
	p->symmetric = symmetric;
	qcal_dtype_range(dtype, &p->qmin, &p->qmax);
	return QCAL_OK;
}

enum qcal_status scale_point_validate(const struct scale_point *p,
				      const char *name, struct qcal_err *err)
{
	int64_t lo, hi;

	if (!p->quantized)
		return QCAL_OK;
	qcal_dtype_range(p->dtype, &lo, &hi);
	if (p->qmin < lo || p->qmax > hi || p->qmin >= p->qmax)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "point %s: qmin/qmax %lld..%lld outside %s's range %lld..%lld",
				    name, (long long)p->qmin, (long long)p->qmax,
				    qcal_dtype_name(p->dtype), (long long)lo, (long long)hi);
	for (int c = 0; c < p->channels; c++) {
		float s = p->scales[c];
		if (!isfinite(s) || !(s > 0) || !isfinite(1.0f / s))
			return qcal_err_set(err, QCAL_EFORMAT,
					    "point %s: scale[%d] = %g, expected a finite positive number",
					    name, c, (double)s);
		if (p->zero_points[c] < p->qmin || p->zero_points[c] > p->qmax)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "point %s: zero_point[%d] = %d outside %lld..%lld",
					    name, c, p->zero_points[c], (long long)p->qmin,
					    (long long)p->qmax);
	}
	return QCAL_OK;
}

static json_t *json_number_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

static json_t *point_to_json(const struct scale_table *st, int i)
{
	const struct qp_point *q = &st->table->points[i];
	const struct scale_point *p = &st->points[i];
	json_t *o = json_object(), *shape = json_array();

	json_object_set_new(o, "name", json_string(q->name));
	json_object_set_new(o, "kind", json_string(qp_kind_name(q->kind)));
	json_object_set_new(o, "role", json_string(qp_role_name(q->role)));
	for (int d = 0; d < q->ndim; d++)
		json_array_append_new(shape, json_integer(q->shape[d]));
	json_object_set_new(o, "shape", shape);
	json_object_set_new(o, "dtype", json_string(qcal_dtype_name(p->quantized ? p->dtype : QCAL_DTYPE_FLOAT)));
	if (!p->quantized)
		return o;
	json_object_set_new(o, "qmin", json_integer(p->qmin));
	json_object_set_new(o, "qmax", json_integer(p->qmax));
	json_object_set_new(o, "symmetric", json_boolean(p->symmetric));
	json_object_set_new(o, "fixed", json_boolean(p->fixed));
	json_object_set_new(o, "learnable", json_boolean(p->learnable));
	json_object_set_new(o, "observer", json_string(p->observer));
	if (q->role == QP_ROLE_WEIGHT) {
		json_t *s = json_array(), *z = json_array();
		for (int c = 0; c < p->channels; c++) {
			json_array_append_new(s, json_real(p->scales[c]));
			json_array_append_new(z, json_integer(p->zero_points[c]));
		}
		json_object_set_new(o, "axis", json_integer(0));
		json_object_set_new(o, "scales", s);
		json_object_set_new(o, "zero_points", z);
	} else {
		json_object_set_new(o, "scale", json_real(p->scales[0]));
		json_object_set_new(o, "zero_point", json_integer(p->zero_points[0]));
	}
	json_object_set_new(o, "observed_min", json_number_or_null(p->observed_min));
	json_object_set_new(o, "observed_max", json_number_or_null(p->observed_max));
	json_object_set_new(o, "clip_min", json_number_or_null(p->clip_min));
	json_object_set_new(o, "clip_max", json_number_or_null(p->clip_max));
	json_object_set_new(o, "count", json_integer((json_int_t)p->count));
	json_object_set_new(o, "nan_count", json_integer((json_int_t)p->nan_count));
	json_object_set_new(o, "inf_count", json_integer((json_int_t)p->inf_count));
	return o;
}

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

enum qcal_status scale_table_write_json(const struct scale_table *st,
					const char *path, struct qcal_err *err)
{
	json_t *root = json_object(), *model = json_object(), *config = json_object();
	json_t *calib = json_object(), *points = json_array();
	enum qcal_status rc;
	char *text;

	json_object_set_new(root, "format", json_string(SCALE_FORMAT_NAME));
	json_object_set_new(root, "version", json_integer(SCALE_FORMAT_VERSION));
	json_object_set_new(model, "name", string_or_null(st->model_name));
	json_object_set_new(model, "file", string_or_null(st->model_file));
	json_object_set_new(model, "input_folded", json_boolean(st->input_folded));
	json_object_set_new(model, "points", json_integer(st->table->count));
	json_object_set_new(root, "model", model);
	json_object_set_new(config, "name", string_or_null(st->config_name));
	json_object_set_new(config, "file", string_or_null(st->config_file));
	json_object_set_new(root, "config", config);
	json_object_set_new(calib, "data", string_or_null(st->data));
	json_object_set_new(calib, "images", json_integer(st->images));
	json_object_set_new(calib, "seed", json_integer((json_int_t)st->seed));
	json_object_set_new(calib, "note", string_or_null(st->note));
	json_object_set_new(root, "calibration", calib);
	for (int i = 0; i < st->table->count; i++)
		json_array_append_new(points, point_to_json(st, i));
	json_object_set_new(root, "points", points);
	text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(17) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!text)
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
	size_t len = strlen(text);
	text[len] = '\n';
	rc = qcal_write_file_atomic(path, text, len + 1, err);
	free(text);
	return rc;
}

/* ---- reading ---- */

struct reader {
	const char *path;
	struct qcal_err *err;
};

static enum qcal_status bad(struct reader *r, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum qcal_status bad(struct reader *r, const char *fmt, ...)
{
	char msg[QCAL_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return qcal_err_set(r->err, QCAL_EFORMAT, "%s: %s", r->path, msg);
}

static bool keys_within(json_t *o, const char *const *allowed, const char **unknown)
{
	const char *key;
	json_t *v;

	json_object_foreach(o, key, v) {
		bool ok = false;
		for (int i = 0; allowed[i] && !ok; i++)
			ok = !strcmp(key, allowed[i]);
		if (!ok) {
			*unknown = key;
			return false;
		}
	}
	return true;
}

/*
 * Typed optional fields: absent (or null where the writer writes null) takes
 * the default; anything of another type is an error naming the key, so that
 * a hand-edited "learnable": 1 is not silently read as false.
 */
static enum qcal_status opt_bool(struct reader *r, json_t *o, const char *where,
				 const char *key, bool dflt, bool *out)
{
	json_t *v = json_object_get(o, key);

	*out = dflt;
	if (!v)
		return QCAL_OK;
	if (!json_is_boolean(v))
		return bad(r, "%s: \"%s\" must be true or false", where, key);
	*out = json_is_true(v);
	return QCAL_OK;
}

static enum qcal_status opt_int(struct reader *r, json_t *o, const char *where,
				const char *key, long long lo, long long dflt, long long *out)
{
	json_t *v = json_object_get(o, key);

	*out = dflt;
	if (!v)
		return QCAL_OK;
	if (!json_is_integer(v) || json_integer_value(v) < lo)
		return bad(r, "%s: \"%s\" must be an integer >= %lld", where, key, lo);
	*out = (long long)json_integer_value(v);
	return QCAL_OK;
}

static enum qcal_status opt_number(struct reader *r, json_t *o, const char *where,
				   const char *key, double *out)
{
	json_t *v = json_object_get(o, key);

	*out = NAN;
	if (!v || json_is_null(v))
		return QCAL_OK;
	if (!json_is_number(v))
		return bad(r, "%s: \"%s\" must be a number or null", where, key);
	*out = json_number_value(v);
	return QCAL_OK;
}

static enum qcal_status opt_string(struct reader *r, json_t *o, const char *where,
				   const char *key, char **out)
{
	json_t *v = json_object_get(o, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return QCAL_OK;
	if (!json_is_string(v))
		return bad(r, "%s: \"%s\" must be a string or null", where, key);
	*out = strdup(json_string_value(v));
	if (!*out)
		return qcal_err_set(r->err, QCAL_ENOMEM, "%s: out of memory", r->path);
	return QCAL_OK;
}

static enum qcal_status read_point(struct reader *r, struct scale_table *st,
				   int index, json_t *o)
{
	static const char *const allowed[] = {
		"name", "kind", "role", "shape", "dtype", "qmin", "qmax", "symmetric",
		"fixed", "learnable", "observer", "axis", "scales", "zero_points",
		"scale", "zero_point", "observed_min", "observed_max", "clip_min",
		"clip_max", "count", "nan_count", "inf_count", NULL,
	};
	const struct qp_point *q = &st->table->points[index];
	struct scale_point *p = &st->points[index];
	const char *unknown = NULL, *dt;
	enum qcal_dtype dtype;
	json_t *shape = json_object_get(o, "shape"), *v;
	size_t k;

	if (!keys_within(o, allowed, &unknown))
		return bad(r, "point %s: unknown key \"%s\"", q->name, unknown);
	if (!json_is_array(shape) || json_array_size(shape) != (size_t)q->ndim)
		return bad(r, "point %s: shape has %zu dims, the model's point has %d",
			   q->name, json_is_array(shape) ? json_array_size(shape) : 0, q->ndim);
	json_array_foreach(shape, k, v)
		if (!json_is_integer(v) || json_integer_value(v) != q->shape[k])
			return bad(r, "point %s: shape[%zu] = %lld, the model's point has %lld",
				   q->name, k, json_is_integer(v) ? (long long)json_integer_value(v) : -1LL,
				   (long long)q->shape[k]);
	v = json_object_get(o, "kind");
	if (!json_is_string(v) || strcmp(json_string_value(v), qp_kind_name(q->kind)))
		return bad(r, "point %s: kind \"%s\", the model's point is \"%s\"", q->name,
			   json_is_string(v) ? json_string_value(v) : "?", qp_kind_name(q->kind));
	v = json_object_get(o, "role");
	if (v && (!json_is_string(v) || strcmp(json_string_value(v), qp_role_name(q->role))))
		return bad(r, "point %s: role \"%s\", the model's point is \"%s\"", q->name,
			   json_is_string(v) ? json_string_value(v) : "?", qp_role_name(q->role));
	dt = json_string_value(json_object_get(o, "dtype"));
	if (!dt || qcal_dtype_parse(dt, &dtype) != 0)
		return bad(r, "point %s: unknown dtype \"%s\"", q->name, dt ? dt : "(missing)");
	if (dtype == QCAL_DTYPE_FLOAT) {
		p->quantized = false;
		p->dtype = QCAL_DTYPE_FLOAT;
		return QCAL_OK;
	}
	int channels = q->role == QP_ROLE_WEIGHT ? q->channels : 1;
	float *scales = calloc((size_t)channels, sizeof(float));
	int32_t *zps = calloc((size_t)channels, sizeof(int32_t));
	enum qcal_status rc = QCAL_OK;
	if (!scales || !zps) {
		rc = qcal_err_set(r->err, QCAL_ENOMEM, "%s: out of memory", r->path);
		goto out;
	}
	if (q->role == QP_ROLE_WEIGHT) {
		json_t *s = json_object_get(o, "scales"), *z = json_object_get(o, "zero_points");
		json_t *axis = json_object_get(o, "axis");
		if (!json_is_integer(axis) || json_integer_value(axis) != 0) {
			rc = bad(r, "point %s: weights need \"axis\": 0", q->name);
			goto out;
		}
		if (!json_is_array(s) || json_array_size(s) != (size_t)channels ||
		    !json_is_array(z) || json_array_size(z) != (size_t)channels) {
			rc = bad(r, "point %s: expected %d per-channel scales and zero_points", q->name,
				 channels);
			goto out;
		}
		for (int c = 0; c < channels; c++) {
			json_t *sv = json_array_get(s, (size_t)c), *zv = json_array_get(z, (size_t)c);
			if (!json_is_number(sv) || !json_is_integer(zv)) {
				rc = bad(r, "point %s: scales[%d]/zero_points[%d] must be numbers",
					 q->name, c, c);
				goto out;
			}
			scales[c] = (float)json_number_value(sv);
			zps[c] = (int32_t)json_integer_value(zv);
		}
	} else {
		json_t *s = json_object_get(o, "scale"), *z = json_object_get(o, "zero_point");
		if (!json_is_number(s) || !json_is_integer(z)) {
			rc = bad(r, "point %s: needs a numeric \"scale\" and an integer \"zero_point\"",
				 q->name);
			goto out;
		}
		scales[0] = (float)json_number_value(s);
		zps[0] = (int32_t)json_integer_value(z);
	}
	char where[QP_NAME_MAX + 16];
	bool symmetric, fixed, learnable;
	long long qmin, qmax, count, nan_count, inf_count;
	char *observer = NULL;
	int64_t lo, hi;
	snprintf(where, sizeof(where), "point %s", q->name);
	qcal_dtype_range(dtype, &lo, &hi);
	if ((rc = opt_bool(r, o, where, "symmetric", false, &symmetric)) != QCAL_OK ||
	    (rc = opt_bool(r, o, where, "fixed", false, &fixed)) != QCAL_OK ||
	    (rc = opt_bool(r, o, where, "learnable", false, &learnable)) != QCAL_OK ||
	    (rc = opt_int(r, o, where, "qmin", INT64_MIN, lo, &qmin)) != QCAL_OK ||
	    (rc = opt_int(r, o, where, "qmax", INT64_MIN, hi, &qmax)) != QCAL_OK ||
	    (rc = opt_int(r, o, where, "count", 0, 0, &count)) != QCAL_OK ||
	    (rc = opt_int(r, o, where, "nan_count", 0, 0, &nan_count)) != QCAL_OK ||
	    (rc = opt_int(r, o, where, "inf_count", 0, 0, &inf_count)) != QCAL_OK ||
	    (rc = opt_number(r, o, where, "observed_min", &p->observed_min)) != QCAL_OK ||
	    (rc = opt_number(r, o, where, "observed_max", &p->observed_max)) != QCAL_OK ||
	    (rc = opt_number(r, o, where, "clip_min", &p->clip_min)) != QCAL_OK ||
	    (rc = opt_number(r, o, where, "clip_max", &p->clip_max)) != QCAL_OK ||
	    (rc = opt_string(r, o, where, "observer", &observer)) != QCAL_OK)
		goto out;
	for (int c = 0; symmetric && c < channels; c++)
		if (zps[c] != 0) {
			rc = bad(r, "point %s: symmetric, but zero_point[%d] = %d (expected 0)",
				 q->name, c, zps[c]);
			free(observer);
			goto out;
		}
	rc = scale_point_set(p, dtype, symmetric, channels, scales, zps, r->err);
	if (rc != QCAL_OK) {
		free(observer);
		goto out;
	}
	p->qmin = qmin;
	p->qmax = qmax;
	p->fixed = fixed;
	p->learnable = learnable;
	snprintf(p->observer, sizeof(p->observer), "%s", observer ? observer : "");
	free(observer);
	p->count = (uint64_t)count;
	p->nan_count = (uint64_t)nan_count;
	p->inf_count = (uint64_t)inf_count;
	rc = scale_point_validate(p, q->name, r->err);
	if (rc != QCAL_OK)
		qcal_err_prefix(r->err, "%s: ", r->path);
out:
	free(scales);
	free(zps);
	return rc;
}

enum qcal_status scale_table_read_json(struct scale_table *st,
				       const struct qp_table *table,
				       const char *path, struct qcal_err *err)
{
	static const char *const top_keys[] = {
		"format", "version", "model", "config", "calibration", "points", NULL,
	};
	struct reader r = { path, err };
	json_error_t jerr;
	json_t *root, *points, *item;
	const char *unknown = NULL;
	enum qcal_status rc;
	char *seen = NULL;
	size_t i;

	rc = scale_table_init(st, table, err);
	if (rc != QCAL_OK)
		return rc;
	root = json_load_file(path, 0, &jerr);
	if (!root) {
		scale_table_free(st);
		if (jerr.line < 0 || strstr(jerr.text, "unable to open"))
			return qcal_err_set(err, QCAL_ENOENT, "%s: cannot read: %s", path, jerr.text);
		return qcal_err_set(err, QCAL_EFORMAT, "%s:%d: invalid JSON: %s", path,
				    jerr.line, jerr.text);
	}
	if (!json_is_object(root)) {
		rc = bad(&r, "not a qcal scale file (top level is not an object)");
		goto out;
	}
	if (!keys_within(root, top_keys, &unknown)) {
		rc = bad(&r, "unknown top-level key \"%s\"", unknown);
		goto out;
	}
	const char *format = json_string_value(json_object_get(root, "format"));
	if (!format || strcmp(format, SCALE_FORMAT_NAME)) {
		rc = bad(&r, "\"format\" is \"%s\", expected \"%s\"", format ? format : "(missing)",
			 SCALE_FORMAT_NAME);
		goto out;
	}
	json_t *version = json_object_get(root, "version");
	if (!json_is_integer(version) || json_integer_value(version) < 1 ||
	    json_integer_value(version) > SCALE_FORMAT_VERSION) {
		rc = bad(&r, "unsupported \"version\" %lld (this qcal reads version %d)",
			 json_is_integer(version) ? (long long)json_integer_value(version) : -1LL,
			 SCALE_FORMAT_VERSION);
		goto out;
	}
	/* "model" says how the input is fed (input_folded changes what every
	 * scale downstream means), so it must be there; the other two are
	 * provenance, optional, but typed when present */
	static const char *const model_keys[] = { "name", "file", "input_folded", "points", NULL };
	static const char *const config_keys[] = { "name", "file", NULL };
	static const char *const calib_keys[] = { "data", "images", "seed", "note", NULL };
	json_t *model = json_object_get(root, "model");
	json_t *config = json_object_get(root, "config");
	json_t *calib = json_object_get(root, "calibration");
	json_t *folded = json_is_object(model) ? json_object_get(model, "input_folded") : NULL;
	long long images = 0, seed = 0, npoints = table->count;
	if (!json_is_object(model) || !json_is_boolean(folded)) {
		rc = bad(&r, "\"model\" must be an object with \"input_folded\": true or false");
		goto out;
	}
	if ((config && !json_is_object(config)) || (calib && !json_is_object(calib))) {
		rc = bad(&r, "\"%s\" must be an object", config && !json_is_object(config)
			 ? "config" : "calibration");
		goto out;
	}
	if (!keys_within(model, model_keys, &unknown) ||
	    (config && !keys_within(config, config_keys, &unknown)) ||
	    (calib && !keys_within(calib, calib_keys, &unknown))) {
		rc = bad(&r, "unknown key \"%s\" in \"model\", \"config\" or \"calibration\"",
			 unknown);
		goto out;
	}
	st->input_folded = json_is_true(folded);
	if ((rc = opt_string(&r, model, "model", "name", &st->model_name)) != QCAL_OK ||
	    (rc = opt_string(&r, model, "model", "file", &st->model_file)) != QCAL_OK ||
	    (rc = opt_int(&r, model, "model", "points", 0, npoints, &npoints)) != QCAL_OK ||
	    (rc = opt_string(&r, config, "config", "name", &st->config_name)) != QCAL_OK ||
	    (rc = opt_string(&r, config, "config", "file", &st->config_file)) != QCAL_OK ||
	    (rc = opt_string(&r, calib, "calibration", "data", &st->data)) != QCAL_OK ||
	    (rc = opt_string(&r, calib, "calibration", "note", &st->note)) != QCAL_OK ||
	    (rc = opt_int(&r, calib, "calibration", "images", 0, 0, &images)) != QCAL_OK ||
	    /* a uint64 seed above 2^63 is written as a negative json integer */
	    (rc = opt_int(&r, calib, "calibration", "seed", LLONG_MIN, 0, &seed)) != QCAL_OK)
		goto out;
	if (npoints != table->count) {
		rc = bad(&r, "\"model\" has %lld points, this model has %d (another architecture?)",
			 npoints, table->count);
		goto out;
	}
	st->images = (long)images;
	st->seed = (uint64_t)seed;
	points = json_object_get(root, "points");
	if (!json_is_array(points)) {
		rc = bad(&r, "missing \"points\" list");
		goto out;
	}
	seen = calloc((size_t)table->count, 1);
	if (!seen) {
		rc = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	json_array_foreach(points, i, item) {
		const char *name = json_string_value(json_object_get(item, "name"));
		int idx;
		if (!json_is_object(item) || !name) {
			rc = bad(&r, "points[%zu] has no \"name\"", i);
			goto out;
		}
		idx = qp_table_find(table, name);
		if (idx < 0) {
			rc = bad(&r, "points[%zu]: \"%s\" is not a quantization point of this model", i, name);
			goto out;
		}
		if (seen[idx]) {
			rc = bad(&r, "point %s listed twice", name);
			goto out;
		}
		seen[idx] = 1;
		rc = read_point(&r, st, idx, item);
		if (rc != QCAL_OK)
			goto out;
	}
	for (int p = 0; p < table->count; p++)
		if (!seen[p]) {
			rc = bad(&r, "point %s is missing (the file lists %zu of the model's %d points)",
				 table->points[p].name, json_array_size(points), table->count);
			goto out;
		}
	rc = QCAL_OK;
out:
	free(seen);
	json_decref(root);
	if (rc != QCAL_OK)
		scale_table_free(st);
	return rc;
}

void scale_table_qparams(const struct scale_table *st, struct qp_qparams *out)
{
	for (int i = 0; i < st->table->count; i++) {
		const struct scale_point *p = &st->points[i];
		struct qp_qparams *q = &out[i];
		memset(q, 0, sizeof(*q));
		q->dtype = p->quantized ? p->dtype : QCAL_DTYPE_FLOAT;
		if (!p->quantized)
			continue;
		q->qmin = p->qmin;
		q->qmax = p->qmax;
		q->scale = p->scales[0];
		q->zero_point = p->zero_points[0];
		q->channels = p->channels;
		q->scales = p->scales;
		q->zero_points = p->zero_points;
	}
}

void scale_table_fakequant_weights(const struct scale_table *st,
				   struct swin_model *model)
{
	for (int i = 0; i < st->table->count; i++) {
		const struct qp_point *q = &st->table->points[i];
		const struct scale_point *p = &st->points[i];
		if (q->role != QP_ROLE_WEIGHT || !p->quantized)
			continue;
		const struct swin_param_spec *spec = &model->table.specs[q->param_index];
		fq_per_channel(model->params + spec->offset, p->channels,
			       spec->numel / (size_t)p->channels, p->scales,
			       p->zero_points, p->qmin, p->qmax);
	}
}

int scale_table_count_quantized(const struct scale_table *st)
{
	int n = 0;

	for (int i = 0; i < st->table->count; i++)
		n += st->points[i].quantized;
	return n;
}

/* ---- exports ---- */

static int write_point_hdf5(hid_t file, const struct scale_table *st, int i,
			    const struct swin_model *model)
{
	const struct qp_point *q = &st->table->points[i];
	const struct scale_point *p = &st->points[i];
	char base[QP_NAME_MAX + 16], name[QP_NAME_MAX + 48];
	int64_t n = p->channels;
	int rc = 0;

	snprintf(base, sizeof(base), "points/%s", q->name);
	snprintf(name, sizeof(name), "%s/scale", base);
	rc |= qcal_h5_write_float(file, name, p->scales, 1, &n);
	snprintf(name, sizeof(name), "%s/zero_point", base);
	rc |= qcal_h5_write_int32(file, name, p->zero_points, 1, &n);
	hid_t g = H5Gopen2(file, base, H5P_DEFAULT);
	if (g < 0)
		return -1;
	rc |= qcal_h5_write_string_attr(g, "dtype", qcal_dtype_name(p->dtype));
	rc |= qcal_h5_write_string_attr(g, "kind", qp_kind_name(q->kind));
	rc |= qcal_h5_write_string_attr(g, "role", qp_role_name(q->role));
	H5Gclose(g);
	if (q->role != QP_ROLE_WEIGHT || !model)
		return rc;
	/* the integer weights, as a deployment would store them */
	const struct swin_param_spec *spec = &model->table.specs[q->param_index];
	const float *w = model->params + spec->offset;
	size_t inner = spec->numel / (size_t)p->channels;
	int32_t *qw = malloc(spec->numel * sizeof(int32_t));
	if (!qw)
		return -1;
	for (int c = 0; c < p->channels; c++) {
		float inv = 1.0f / p->scales[c];
		for (size_t k = 0; k < inner; k++) {
			float v = nearbyintf(w[c * inner + k] * inv) + (float)p->zero_points[c];
			v = v < (float)p->qmin ? (float)p->qmin : v > (float)p->qmax ? (float)p->qmax : v;
			qw[c * inner + k] = (int32_t)v;
		}
	}
	snprintf(name, sizeof(name), "%s/qweight", base);
	int bits = qcal_dtype_bits(p->dtype);
	if (bits <= 8) {
		int8_t *q8 = malloc(spec->numel);
		if (!q8) {
			free(qw);
			return -1;
		}
		for (size_t k = 0; k < spec->numel; k++)
			q8[k] = (int8_t)qw[k];
		rc |= qcal_h5_write_int8(file, name, q8, spec->ndim, spec->shape);
		free(q8);
	} else if (bits <= 16) {
		int16_t *q16 = malloc(spec->numel * sizeof(int16_t));
		if (!q16) {
			free(qw);
			return -1;
		}
		for (size_t k = 0; k < spec->numel; k++)
			q16[k] = (int16_t)qw[k];
		rc |= qcal_h5_write_int16(file, name, q16, spec->ndim, spec->shape);
		free(q16);
	} else {
		rc |= qcal_h5_write_int32(file, name, qw, spec->ndim, spec->shape);
	}
	free(qw);
	return rc;
}

enum qcal_status scale_table_write_hdf5(const struct scale_table *st,
					const struct swin_model *model,
					const char *path, struct qcal_err *err)
{
	hid_t file = qcal_h5_create(path, err);
	int rc = 0;

	if (file < 0)
		return QCAL_ENOMEM;
	rc |= qcal_h5_write_string_attr(file, "format", SCALE_FORMAT_NAME);
	rc |= qcal_h5_write_string_attr(file, "model", st->model_name ? st->model_name : "");
	rc |= qcal_h5_write_string_attr(file, "config", st->config_name ? st->config_name : "");
	rc |= qcal_h5_write_string_attr(file, "input_folded", st->input_folded ? "true" : "false");
	for (int i = 0; i < st->table->count && rc == 0; i++)
		if (st->points[i].quantized)
			rc |= write_point_hdf5(file, st, i, model);
	if (rc != 0) {
		qcal_h5_discard(file);
		return qcal_err_set(err, QCAL_EIO, "%s: building the scale file failed (out of memory?)",
				    path);
	}
	return qcal_h5_commit(file, path, err);
}

enum qcal_status scale_table_write_tensorrt(const struct scale_table *st,
					    const char *path, int trt_version,
					    struct qcal_err *err)
{
	struct qcal_afile af;
	enum qcal_status rc = qcal_afile_open(&af, path, err);

	if (rc != QCAL_OK)
		return rc;
	fprintf(af.fp, "TRT-%d-EntropyCalibration2\n", trt_version);
	for (int i = 0; i < st->table->count; i++) {
		const struct qp_point *q = &st->table->points[i];
		const struct scale_point *p = &st->points[i];
		uint32_t bits;
		if (q->role == QP_ROLE_WEIGHT || !p->quantized)
			continue;
		memcpy(&bits, &p->scales[0], sizeof(bits));
		fprintf(af.fp, "%s: %08x\n", q->name, bits);
	}
	return qcal_afile_commit(&af, err);
}
