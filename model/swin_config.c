/*
 * Swin config <-> JSON (jansson).  Field names follow the checkpoint layout in
 * shared/models/README.md.  Torchvision derives the patch grid with a strided
 * convolution (floor division) and halves it in every patch merging with
 * padding to even sides (ceil division); the helpers below mirror that.
 */
#include "model/swin_config.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const known_keys[] = {
	"name", "img_size", "patch_size", "in_chans", "embed_dim", "depths",
	"num_heads", "window_size", "mlp_ratio", "num_classes", "mean", "std",
	"classes", NULL,
};

/* Descriptive keys that training scripts leave in model cards. */
static const char *const ignored_keys[] = {
	"note", "test_acc", "test_images", "epochs", "recipe", "trained_with",
	"test_acc_note", "source", NULL,
};

static bool key_in(const char *key, const char *const *list)
{
	for (int i = 0; list[i]; i++)
		if (strcmp(key, list[i]) == 0)
			return true;
	return false;
}

static enum qcal_status get_int(json_t *root, const char *key, int *out,
				struct qcal_err *err)
{
	json_t *v = json_object_get(root, key);

	if (!v)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: missing key \"%s\"", key);
	if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
	    fabs(json_real_value(v)) < 1e9) {
		*out = (int)json_real_value(v);
		return QCAL_OK;
	}
	if (!json_is_integer(v) || json_integer_value(v) < -1000000000 ||
	    json_integer_value(v) > 1000000000)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: key \"%s\" must be an integer", key);
	*out = (int)json_integer_value(v);
	return QCAL_OK;
}

static enum qcal_status get_int_list(json_t *root, const char *key, int *out,
				     int max, int *count, struct qcal_err *err)
{
	json_t *v = json_object_get(root, key);
	size_t i;
	json_t *item;

	if (!v)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: missing key \"%s\"", key);
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > (size_t)max)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: \"%s\" must be a list of 1 to %d integers",
				    key, max);
	json_array_foreach(v, i, item) {
		if (!json_is_integer(item))
			return qcal_err_set(err, QCAL_EFORMAT,
					    "config: \"%s\"[%zu] must be an integer",
					    key, i);
		/* Range-check before the cast: 2^32 + 2 must not become 2. */
		if (json_integer_value(item) < -1000000000 ||
		    json_integer_value(item) > 1000000000)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "config: \"%s\"[%zu] = %lld is out of range",
					    key, i, (long long)json_integer_value(item));
		out[i] = (int)json_integer_value(item);
	}
	*count = (int)json_array_size(v);
	return QCAL_OK;
}

static enum qcal_status get_float_list(json_t *root, const char *key,
				       float *out, int want, struct qcal_err *err)
{
	json_t *v = json_object_get(root, key);
	size_t i;
	json_t *item;

	if (!v)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: missing key \"%s\"", key);
	if (!json_is_array(v) || json_array_size(v) != (size_t)want)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: \"%s\" must be a list of %d numbers (one per input channel)",
				    key, want);
	json_array_foreach(v, i, item) {
		if (!json_is_number(item))
			return qcal_err_set(err, QCAL_EFORMAT,
					    "config: \"%s\"[%zu] must be a number",
					    key, i);
		out[i] = (float)json_number_value(item);
	}
	return QCAL_OK;
}

enum qcal_status swin_config_from_json(struct swin_config *cfg, const char *text,
				       struct qcal_err *err)
{
	json_error_t jerr;
	json_t *root = json_loads(text, 0, &jerr);
	enum qcal_status st = QCAL_OK;
	const char *key;
	json_t *val;
	int nheads = 0;

	memset(cfg, 0, sizeof(*cfg));
	if (!root)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: invalid JSON at line %d: %s",
				    jerr.line, jerr.text);
	if (!json_is_object(root)) {
		st = qcal_err_set(err, QCAL_EFORMAT, "config: not a JSON object");
		goto out_free_json;
	}
	json_object_foreach(root, key, val) {
		if (!key_in(key, known_keys) && !key_in(key, ignored_keys)) {
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "config: unknown key \"%s\", expected only name, img_size, patch_size, in_chans, embed_dim, depths, num_heads, window_size, mlp_ratio, num_classes, mean, std, classes (and descriptive keys such as note)",
					  key);
			goto out_free_json;
		}
	}
	json_t *name = json_object_get(root, "name");
	if (name && json_is_string(name))
		snprintf(cfg->name, sizeof(cfg->name), "%s", json_string_value(name));
	if ((st = get_int(root, "img_size", &cfg->img_size, err)) ||
	    (st = get_int(root, "patch_size", &cfg->patch_size, err)) ||
	    (st = get_int(root, "embed_dim", &cfg->embed_dim, err)) ||
	    (st = get_int(root, "window_size", &cfg->window_size, err)) ||
	    (st = get_int(root, "num_classes", &cfg->num_classes, err)))
		goto out_free_json;
	cfg->in_chans = 3;
	if (json_object_get(root, "in_chans") &&
	    (st = get_int(root, "in_chans", &cfg->in_chans, err)))
		goto out_free_json;
	if ((st = get_int_list(root, "depths", cfg->depths, SWIN_MAX_STAGES,
			       &cfg->num_stages, err)) ||
	    (st = get_int_list(root, "num_heads", cfg->num_heads, SWIN_MAX_STAGES,
			       &nheads, err)))
		goto out_free_json;
	if (nheads != cfg->num_stages) {
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "config: depths has %d stages but num_heads has %d",
				  cfg->num_stages, nheads);
		goto out_free_json;
	}
	json_t *ratio = json_object_get(root, "mlp_ratio");
	cfg->mlp_ratio = 4.0;
	if (ratio) {
		if (!json_is_number(ratio)) {
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "config: \"mlp_ratio\" must be a number");
			goto out_free_json;
		}
		cfg->mlp_ratio = json_number_value(ratio);
	}
	if (cfg->in_chans < 1 || cfg->in_chans > SWIN_MAX_CHANS) {
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "config: in_chans = %d, expected 1..%d",
				  cfg->in_chans, SWIN_MAX_CHANS);
		goto out_free_json;
	}
	if ((st = get_float_list(root, "mean", cfg->mean, cfg->in_chans, err)) ||
	    (st = get_float_list(root, "std", cfg->std, cfg->in_chans, err)))
		goto out_free_json;
	json_t *classes = json_object_get(root, "classes");
	if (classes) {
		size_t i;
		json_t *item;
		if (!json_is_array(classes) ||
		    json_array_size(classes) != (size_t)cfg->num_classes) {
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "config: \"classes\" must list num_classes = %d names",
					  cfg->num_classes);
			goto out_free_json;
		}
		cfg->class_names = calloc((size_t)cfg->num_classes, sizeof(char *));
		if (!cfg->class_names) {
			st = qcal_err_set(err, QCAL_ENOMEM, "config: out of memory");
			goto out_free_json;
		}
		cfg->num_class_names = cfg->num_classes;
		json_array_foreach(classes, i, item) {
			if (!json_is_string(item)) {
				st = qcal_err_set(err, QCAL_EFORMAT,
						  "config: \"classes\"[%zu] must be a string", i);
				goto out_free_json;
			}
			cfg->class_names[i] = strdup(json_string_value(item));
			if (!cfg->class_names[i]) {
				st = qcal_err_set(err, QCAL_ENOMEM, "config: out of memory");
				goto out_free_json;
			}
		}
	}
	st = swin_config_validate(cfg, err);
out_free_json:
	json_decref(root);
	if (st != QCAL_OK)
		swin_config_free(cfg);
	return st;
}

enum qcal_status swin_config_validate(const struct swin_config *c,
				      struct qcal_err *err)
{
	if (c->img_size < 1 || c->img_size > 8192)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: img_size = %d, expected 1..8192", c->img_size);
	if (c->patch_size < 1 || c->patch_size > c->img_size)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: patch_size = %d, expected 1..img_size (%d)",
				    c->patch_size, c->img_size);
	if (c->embed_dim < 1 || c->embed_dim > 65536)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: embed_dim = %d, expected 1..65536", c->embed_dim);
	if (c->num_stages < 1 || c->num_stages > SWIN_MAX_STAGES)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: %d stages, expected 1..%d", c->num_stages,
				    SWIN_MAX_STAGES);
	if (c->window_size < 1 || c->window_size > 64)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: window_size = %d, expected 1..64", c->window_size);
	if (c->num_classes < 1 || c->num_classes > 1000000)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: num_classes = %d, expected 1..1000000",
				    c->num_classes);
	if (!(c->mlp_ratio > 0 && c->mlp_ratio <= 64))
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: mlp_ratio = %g, expected (0, 64]", c->mlp_ratio);
	if ((long)c->embed_dim << (c->num_stages - 1) > 1 << 20)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "config: embed_dim %d doubles past 2^20 channels over %d stages",
				    c->embed_dim, c->num_stages);
	for (int s = 0; s < c->num_stages; s++) {
		int dim = swin_stage_dim(c, s);
		if (c->depths[s] < 1 || c->depths[s] > 256)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "config: depths[%d] = %d, expected 1..256", s,
					    c->depths[s]);
		if (c->num_heads[s] < 1 || dim % c->num_heads[s] != 0)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "config: num_heads[%d] = %d does not divide the stage's %d channels",
					    s, c->num_heads[s], dim);
		if (swin_mlp_hidden(c, s) < 1)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "config: mlp_ratio %g gives an empty MLP at stage %d",
					    c->mlp_ratio, s);
	}
	for (int i = 0; i < c->in_chans; i++)
		if (!isfinite(c->mean[i]) || !isfinite(c->std[i]) || !(c->std[i] > 0))
			return qcal_err_set(err, QCAL_EFORMAT,
					    "config: mean/std[%d] = %g/%g, expected finite values and std > 0",
					    i, c->mean[i], c->std[i]);
	return QCAL_OK;
}

char *swin_config_to_json(const struct swin_config *c)
{
	json_t *root = json_object();
	json_t *depths = json_array(), *heads = json_array();
	json_t *mean = json_array(), *std = json_array();
	char *text;

	json_object_set_new(root, "name", json_string(c->name));
	json_object_set_new(root, "img_size", json_integer(c->img_size));
	json_object_set_new(root, "patch_size", json_integer(c->patch_size));
	json_object_set_new(root, "in_chans", json_integer(c->in_chans));
	json_object_set_new(root, "embed_dim", json_integer(c->embed_dim));
	for (int s = 0; s < c->num_stages; s++) {
		json_array_append_new(depths, json_integer(c->depths[s]));
		json_array_append_new(heads, json_integer(c->num_heads[s]));
	}
	json_object_set_new(root, "depths", depths);
	json_object_set_new(root, "num_heads", heads);
	json_object_set_new(root, "window_size", json_integer(c->window_size));
	json_object_set_new(root, "mlp_ratio", json_real(c->mlp_ratio));
	json_object_set_new(root, "num_classes", json_integer(c->num_classes));
	for (int i = 0; i < c->in_chans; i++) {
		json_array_append_new(mean, json_real(c->mean[i]));
		json_array_append_new(std, json_real(c->std[i]));
	}
	json_object_set_new(root, "mean", mean);
	json_object_set_new(root, "std", std);
	if (c->class_names) {
		json_t *classes = json_array();
		for (int i = 0; i < c->num_class_names; i++)
			json_array_append_new(classes, json_string(c->class_names[i]));
		json_object_set_new(root, "classes", classes);
	}
	text = json_dumps(root, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(root);
	return text;
}

enum qcal_status swin_config_copy(struct swin_config *dst,
				  const struct swin_config *src)
{
	*dst = *src;
	dst->class_names = NULL;
	dst->num_class_names = 0;
	if (!src->class_names)
		return QCAL_OK;
	dst->class_names = calloc((size_t)src->num_class_names, sizeof(char *));
	if (!dst->class_names)
		return QCAL_ENOMEM;
	dst->num_class_names = src->num_class_names;
	for (int i = 0; i < src->num_class_names; i++) {
		dst->class_names[i] = strdup(src->class_names[i]);
		if (!dst->class_names[i]) {
			swin_config_free(dst);
			return QCAL_ENOMEM;
		}
	}
	return QCAL_OK;
}

void swin_config_free(struct swin_config *cfg)
{
	if (!cfg || !cfg->class_names)
		return;
	for (int i = 0; i < cfg->num_class_names; i++)
		free(cfg->class_names[i]);
	free(cfg->class_names);
	cfg->class_names = NULL;
	cfg->num_class_names = 0;
}

void swin_config_swin_t(struct swin_config *c)
{
	static const float mean[3] = { 0.485f, 0.456f, 0.406f };
	static const float std[3] = { 0.229f, 0.224f, 0.225f };

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "swin-t");
	c->img_size = 224;
	c->patch_size = 4;
	c->in_chans = 3;
	c->embed_dim = 96;
	c->num_stages = 4;
	const int depths[4] = { 2, 2, 6, 2 }, heads[4] = { 3, 6, 12, 24 };
	memcpy(c->depths, depths, sizeof(depths));
	memcpy(c->num_heads, heads, sizeof(heads));
	c->window_size = 7;
	c->mlp_ratio = 4.0;
	c->num_classes = 1000;
	memcpy(c->mean, mean, sizeof(mean));
	memcpy(c->std, std, sizeof(std));
}

int swin_stage_dim(const struct swin_config *c, int stage)
{
	return c->embed_dim << stage;
}

int swin_stage_res(const struct swin_config *c, int stage)
{
	int res = c->img_size / c->patch_size;

	for (int s = 0; s < stage; s++)
		res = (res + 1) / 2;
	return res;
}

int swin_mlp_hidden(const struct swin_config *c, int stage)
{
	return (int)(swin_stage_dim(c, stage) * c->mlp_ratio);
}

int swin_total_blocks(const struct swin_config *c)
{
	int n = 0;

	for (int s = 0; s < c->num_stages; s++)
		n += c->depths[s];
	return n;
}

int swin_padded_res(const struct swin_config *c, int stage)
{
	int res = swin_stage_res(c, stage), ws = c->window_size;

	return (res + ws - 1) / ws * ws;
}

bool swin_stage_shifts(const struct swin_config *c, int stage)
{
	return c->window_size < swin_padded_res(c, stage) && c->window_size / 2 > 0;
}

int swin_stage_feature_index(int stage)
{
	return 2 * stage + 1;
}
