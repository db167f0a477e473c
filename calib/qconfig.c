/*
 * YAML quantization configs, read with libyaml's document loader so every
 * node keeps its line number for error messages.  The set of keys is closed:
 * an unknown key is an error (a misspelt "dtpye" must not be ignored).
 */
#include "calib/qconfig.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "core/atomic_file.h"

static const char *const observer_names[] = {
	"minmax", "moving_average", "percentile", "entropy", "mse",
	"per_channel_minmax", NULL,
};

struct parse {
	yaml_document_t *doc;
	const char *path;
	struct qcal_err *err;
};

static int line_of(const yaml_node_t *node)
{
	return (int)node->start_mark.line + 1;
}

static enum qcal_status fail(struct parse *ps, const yaml_node_t *node,
			     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static enum qcal_status fail(struct parse *ps, const yaml_node_t *node,
			     const char *fmt, ...)
{
	char msg[QCAL_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return qcal_err_set(ps->err, QCAL_EFORMAT, "%s:%d: %s", ps->path,
			    node ? line_of(node) : 0, msg);
}

static const char *scalar(const yaml_node_t *node)
{
	return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : NULL;
}

static enum qcal_status parse_bool(struct parse *ps, const char *key,
				   const yaml_node_t *v, bool *out)
{
	const char *s = scalar(v);

	if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))) {
		*out = true;
		return QCAL_OK;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))) {
		*out = false;
		return QCAL_OK;
	}
	return fail(ps, v, "key '%s' wants true or false", key);
}

/* A number, or a fraction written "a/b" (e.g. scale: 1/128). */
static enum qcal_status parse_number(struct parse *ps, const char *key,
				     const yaml_node_t *v, double *out)
{
	const char *s = scalar(v);
	char *end;
	double num, den = 1.0;

	if (!s || !*s)
		return fail(ps, v, "key '%s' wants a number", key);
	errno = 0;
	num = strtod(s, &end);
	if (*end == '/') {
		const char *d = end + 1;
		den = strtod(d, &end);
		if (end == d)
			return fail(ps, v, "key '%s': '%s' is not a number or a fraction", key, s);
	}
	if (errno || *end || !isfinite(num) || !isfinite(den) || den == 0)
		return fail(ps, v, "key '%s': '%s' is not a number or a fraction", key, s);
	*out = num / den;
	return QCAL_OK;
}

static enum qcal_status parse_int(struct parse *ps, const char *key,
				  const yaml_node_t *v, long min, long max,
				  long *out)
{
	const char *s = scalar(v);
	char *end;
	long n;

	if (!s || !*s)
		return fail(ps, v, "key '%s' wants an integer", key);
	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || *end || n < min || n > max)
		return fail(ps, v, "key '%s': '%s' is not an integer in %ld..%ld", key, s, min, max);
	*out = n;
	return QCAL_OK;
}

/* A string glob or a list of them. */
static enum qcal_status parse_globs(struct parse *ps, const char *key,
				    const yaml_node_t *v, char **out, int *count)
{
	*count = 0;
	if (scalar(v)) {
		out[(*count)++] = strdup(scalar(v));
		return out[0] ? QCAL_OK : qcal_err_set(ps->err, QCAL_ENOMEM, "out of memory");
	}
	if (v->type != YAML_SEQUENCE_NODE)
		return fail(ps, v, "key '%s' wants a pattern or a list of patterns", key);
	for (yaml_node_item_t *it = v->data.sequence.items.start;
	     it < v->data.sequence.items.top; it++) {
		const yaml_node_t *item = yaml_document_get_node(ps->doc, *it);
		if (!scalar(item))
			return fail(ps, item, "key '%s': list items must be patterns", key);
		if (*count == QCONFIG_MAX_GLOBS)
			return fail(ps, item, "key '%s': at most %d patterns", key, QCONFIG_MAX_GLOBS);
		out[*count] = strdup(scalar(item));
		if (!out[*count])
			return qcal_err_set(ps->err, QCAL_ENOMEM, "out of memory");
		(*count)++;
	}
	if (*count == 0)
		return fail(ps, v, "key '%s': empty list", key);
	return QCAL_OK;
}

static bool kind_glob_matches_any(const char *glob)
{
	for (int k = 0; k < QP_KIND_COUNT; k++)
		if (fnmatch(glob, qp_kind_name((enum qp_kind)k), 0) == 0)
			return true;
	return false;
}

/* Fields of a spec (defaults or a rule); match_out non-NULL for rules. */
static enum qcal_status parse_spec(struct parse *ps, const yaml_node_t *map,
				   struct qconfig_spec *spec, unsigned *sets,
				   struct qconfig_rule *rule)
{
	enum qcal_status st = QCAL_OK;

	if (map->type != YAML_MAPPING_NODE)
		return fail(ps, map, "expected a mapping of quantization settings");
	for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
	     pr < map->data.mapping.pairs.top && st == QCAL_OK; pr++) {
		const yaml_node_t *k = yaml_document_get_node(ps->doc, pr->key);
		const yaml_node_t *v = yaml_document_get_node(ps->doc, pr->value);
		const char *key = scalar(k);
		long n;
		if (!key)
			return fail(ps, k, "keys must be plain strings");
		if (rule && !strcmp(key, "match")) {
			if (v->type != YAML_MAPPING_NODE)
				return fail(ps, v, "'match' wants a mapping with name, kind and/or role");
			for (yaml_node_pair_t *mp = v->data.mapping.pairs.start;
			     mp < v->data.mapping.pairs.top && st == QCAL_OK; mp++) {
				const yaml_node_t *mk = yaml_document_get_node(ps->doc, mp->key);
				const yaml_node_t *mv = yaml_document_get_node(ps->doc, mp->value);
				const char *mkey = scalar(mk);
				if (mkey && !strcmp(mkey, "name")) {
					st = parse_globs(ps, "name", mv, rule->names, &rule->num_names);
				} else if (mkey && !strcmp(mkey, "kind")) {
					st = parse_globs(ps, "kind", mv, rule->kinds, &rule->num_kinds);
					for (int i = 0; st == QCAL_OK && i < rule->num_kinds; i++)
						if (!kind_glob_matches_any(rule->kinds[i]))
							st = fail(ps, mv, "kind pattern '%s' matches no point kind (see 'qcal points --help')",
								  rule->kinds[i]);
				} else if (mkey && !strcmp(mkey, "role")) {
					const char *r = scalar(mv);
					if (r && !strcmp(r, "activation"))
						rule->role = QP_ROLE_ACTIVATION;
					else if (r && !strcmp(r, "aux"))
						rule->role = QP_ROLE_AUX;
					else if (r && !strcmp(r, "weight"))
						rule->role = QP_ROLE_WEIGHT;
					else
						st = fail(ps, mv, "'role' wants activation, aux or weight");
				} else {
					st = fail(ps, mk, "unknown key '%s' in match (expected name, kind, role)",
						  mkey ? mkey : "?");
				}
			}
		} else if (!strcmp(key, "quantize")) {
			st = parse_bool(ps, key, v, &spec->quantize);
			*sets |= QSPEC_QUANTIZE;
		} else if (!strcmp(key, "dtype")) {
			const char *d = scalar(v);
			if (!d || qcal_dtype_parse(d, &spec->dtype) != 0)
				st = fail(ps, v, "unknown dtype '%s' (expected int4, uint4, int8, uint8, int16, uint16, int32 or float)",
					  d ? d : "?");
			if (st == QCAL_OK && spec->dtype == QCAL_DTYPE_FLOAT) {
				spec->quantize = false;
				*sets |= QSPEC_QUANTIZE;
			} else if (st == QCAL_OK) {
				spec->quantize = true;
				*sets |= QSPEC_QUANTIZE | QSPEC_DTYPE;
			}
		} else if (!strcmp(key, "symmetric")) {
			st = parse_bool(ps, key, v, &spec->symmetric);
			*sets |= QSPEC_SYMMETRIC;
		} else if (!strcmp(key, "observer")) {
			const char *o = scalar(v);
			int ok = 0;
			for (int i = 0; o && observer_names[i]; i++)
				ok |= !strcmp(o, observer_names[i]);
			if (!ok)
				st = fail(ps, v, "unknown observer '%s' (expected minmax, moving_average, percentile, entropy, mse or per_channel_minmax)",
					  o ? o : "?");
			else
				snprintf(spec->observer, sizeof(spec->observer), "%s", o);
			*sets |= QSPEC_OBSERVER;
		} else if (!strcmp(key, "percentile")) {
			st = parse_number(ps, key, v, &spec->percentile);
			if (st == QCAL_OK && !(spec->percentile > 0 && spec->percentile <= 100))
				st = fail(ps, v, "percentile must be in (0, 100]");
			*sets |= QSPEC_PERCENTILE;
		} else if (!strcmp(key, "bins")) {
			st = parse_int(ps, key, v, 16, 1 << 20, &n);
			spec->bins = (int)n;
			*sets |= QSPEC_BINS;
		} else if (!strcmp(key, "scale")) {
			st = parse_number(ps, key, v, &spec->scale);
			if (st == QCAL_OK && !(spec->scale > 0 && spec->scale < 1e30))
				st = fail(ps, v, "scale must be finite and positive");
			spec->fixed = true;
			*sets |= QSPEC_SCALE;
		} else if (!strcmp(key, "zero_point")) {
			st = parse_int(ps, key, v, INT32_MIN, INT32_MAX, &n);
			spec->zero_point = (int32_t)n;
			*sets |= QSPEC_ZERO_POINT;
		} else if (!strcmp(key, "learnable")) {
			st = parse_bool(ps, key, v, &spec->learnable);
			*sets |= QSPEC_LEARNABLE;
		} else {
			st = fail(ps, k, "unknown key '%s' (expected %squantize, dtype, symmetric, observer, percentile, bins, scale, zero_point, learnable)",
				  key, rule ? "match, " : "");
		}
	}
	return st;
}

static void spec_defaults(struct qconfig_spec *s, bool weight)
{
	memset(s, 0, sizeof(*s));
	s->quantize = true;
	s->dtype = QCAL_DTYPE_INT8;
	s->symmetric = true;
	snprintf(s->observer, sizeof(s->observer), "%s", weight ? "per_channel_minmax" : "minmax");
	s->percentile = 99.99;
	s->learnable = true;
}

static char *dup_scalar(struct parse *ps, const yaml_node_t *v, const char *key,
			enum qcal_status *st)
{
	char *s;

	if (!scalar(v)) {
		*st = fail(ps, v, "key '%s' wants a string", key);
		return NULL;
	}
	s = strdup(scalar(v));
	if (!s)
		*st = qcal_err_set(ps->err, QCAL_ENOMEM, "out of memory");
	return s;
}

static enum qcal_status parse_root(struct parse *ps, const yaml_node_t *root,
				   struct qconfig *cfg)
{
	enum qcal_status st = QCAL_OK;
	bool have_version = false;

	if (!root || root->type != YAML_MAPPING_NODE)
		return fail(ps, root, "a config is a mapping with version, name, input, defaults and rules");
	for (yaml_node_pair_t *pr = root->data.mapping.pairs.start;
	     pr < root->data.mapping.pairs.top && st == QCAL_OK; pr++) {
		const yaml_node_t *k = yaml_document_get_node(ps->doc, pr->key);
		const yaml_node_t *v = yaml_document_get_node(ps->doc, pr->value);
		const char *key = scalar(k);
		unsigned ignored = 0;
		if (!key)
			return fail(ps, k, "keys must be plain strings");
		if (!strcmp(key, "version")) {
			const char *ver = scalar(v);
			if (!ver || strcmp(ver, "1"))
				st = fail(ps, v, "unsupported version '%s' (this qcal reads version 1)",
					  ver ? ver : "?");
			have_version = true;
		} else if (!strcmp(key, "name")) {
			free(cfg->name);
			cfg->name = dup_scalar(ps, v, key, &st);
		} else if (!strcmp(key, "description")) {
			free(cfg->description);
			cfg->description = dup_scalar(ps, v, key, &st);
		} else if (!strcmp(key, "input")) {
			if (v->type != YAML_MAPPING_NODE)
				return fail(ps, v, "'input' wants a mapping (fold_normalization)");
			for (yaml_node_pair_t *ip = v->data.mapping.pairs.start;
			     ip < v->data.mapping.pairs.top && st == QCAL_OK; ip++) {
				const yaml_node_t *ik = yaml_document_get_node(ps->doc, ip->key);
				const yaml_node_t *iv = yaml_document_get_node(ps->doc, ip->value);
				const char *ikey = scalar(ik);
				if (ikey && !strcmp(ikey, "fold_normalization"))
					st = parse_bool(ps, ikey, iv, &cfg->fold_input);
				else
					st = fail(ps, ik, "unknown key '%s' in input (expected fold_normalization)",
						  ikey ? ikey : "?");
			}
		} else if (!strcmp(key, "defaults")) {
			if (v->type != YAML_MAPPING_NODE)
				return fail(ps, v, "'defaults' wants a mapping with activations and/or weights");
			for (yaml_node_pair_t *dp = v->data.mapping.pairs.start;
			     dp < v->data.mapping.pairs.top && st == QCAL_OK; dp++) {
				const yaml_node_t *dk = yaml_document_get_node(ps->doc, dp->key);
				const yaml_node_t *dv = yaml_document_get_node(ps->doc, dp->value);
				const char *dkey = scalar(dk);
				if (dkey && !strcmp(dkey, "activations"))
					st = parse_spec(ps, dv, &cfg->activations, &ignored, NULL);
				else if (dkey && !strcmp(dkey, "weights"))
					st = parse_spec(ps, dv, &cfg->weights, &ignored, NULL);
				else
					st = fail(ps, dk, "unknown key '%s' in defaults (expected activations, weights)",
						  dkey ? dkey : "?");
			}
		} else if (!strcmp(key, "rules")) {
			if (v->type != YAML_SEQUENCE_NODE)
				return fail(ps, v, "'rules' wants a list");
			if (cfg->rules)
				return fail(ps, k, "'rules' given twice");
			size_t count = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
			cfg->rules = calloc(count ? count : 1, sizeof(*cfg->rules));
			if (!cfg->rules)
				return qcal_err_set(ps->err, QCAL_ENOMEM, "out of memory");
			for (yaml_node_item_t *it = v->data.sequence.items.start;
			     it < v->data.sequence.items.top && st == QCAL_OK; it++) {
				const yaml_node_t *item = yaml_document_get_node(ps->doc, *it);
				struct qconfig_rule *r = &cfg->rules[cfg->num_rules++];
				r->line = line_of(item);
				r->role = -1;
				spec_defaults(&r->spec, false);
				st = parse_spec(ps, item, &r->spec, &r->sets, r);
				if (st == QCAL_OK && !r->num_names && !r->num_kinds && r->role < 0)
					st = fail(ps, item, "rule has no 'match' (name, kind or role)");
			}
		} else {
			st = fail(ps, k, "unknown key '%s' (expected version, name, description, input, defaults, rules)",
				  key);
		}
	}
	if (st == QCAL_OK && !have_version)
		st = fail(ps, root, "missing 'version: 1'");
	return st;
}

enum qcal_status qconfig_parse(struct qconfig *cfg, const char *path,
			       const char *text, size_t len,
			       struct qcal_err *err)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	enum qcal_status st;
	struct parse ps = { .doc = &doc, .path = path, .err = err };

	memset(cfg, 0, sizeof(*cfg));
	spec_defaults(&cfg->activations, false);
	spec_defaults(&cfg->weights, true);
	cfg->path = strdup(path);
	if (!cfg->path)
		return qcal_err_set(err, QCAL_ENOMEM, "out of memory");
	if (!yaml_parser_initialize(&parser)) {
		qconfig_free(cfg);
		return qcal_err_set(err, QCAL_ENOMEM, "%s: cannot start the YAML parser", path);
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s:%zu: YAML error: %s", path,
				  parser.problem_mark.line + 1,
				  parser.problem ? parser.problem : "malformed document");
		yaml_parser_delete(&parser);
		qconfig_free(cfg);
		return st;
	}
	st = parse_root(&ps, yaml_document_get_root_node(&doc), cfg);
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	if (st == QCAL_OK && !cfg->name) {
		const char *base = strrchr(path, '/');
		cfg->name = strdup(base ? base + 1 : path);
		if (cfg->name) {
			char *dot = strrchr(cfg->name, '.');
			if (dot)
				*dot = '\0';
		}
	}
	if (st != QCAL_OK)
		qconfig_free(cfg);
	return st;
}

enum qcal_status qconfig_load(struct qconfig *cfg, const char *path,
			      struct qcal_err *err)
{
	char *text;
	size_t len;
	enum qcal_status st = qcal_read_file(path, &text, &len, err);

	memset(cfg, 0, sizeof(*cfg));
	if (st != QCAL_OK)
		return st;
	st = qconfig_parse(cfg, path, text, len, err);
	free(text);
	return st;
}

void qconfig_free(struct qconfig *cfg)
{
	if (!cfg)
		return;
	for (int i = 0; i < cfg->num_rules; i++) {
		for (int j = 0; j < cfg->rules[i].num_names; j++)
			free(cfg->rules[i].names[j]);
		for (int j = 0; j < cfg->rules[i].num_kinds; j++)
			free(cfg->rules[i].kinds[j]);
	}
	free(cfg->rules);
	free(cfg->path);
	free(cfg->name);
	free(cfg->description);
	memset(cfg, 0, sizeof(*cfg));
}

static bool any_glob(char *const *globs, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (fnmatch(globs[i], s, 0) == 0)
			return true;
	return false;
}

static bool rule_matches(const struct qconfig_rule *r, const struct qp_point *p)
{
	if (r->role >= 0 && (int)p->role != r->role)
		return false;
	if (r->num_names && !any_glob(r->names, r->num_names, p->name))
		return false;
	if (r->num_kinds && !any_glob(r->kinds, r->num_kinds, qp_kind_name(p->kind)))
		return false;
	return true;
}

static void apply(struct qconfig_spec *dst, const struct qconfig_spec *src,
		  unsigned sets)
{
	if (sets & QSPEC_QUANTIZE)
		dst->quantize = src->quantize;
	if (sets & QSPEC_DTYPE)
		dst->dtype = src->dtype;
	if (sets & QSPEC_SYMMETRIC)
		dst->symmetric = src->symmetric;
	if (sets & QSPEC_OBSERVER)
		memcpy(dst->observer, src->observer, sizeof(dst->observer));
	if (sets & QSPEC_PERCENTILE)
		dst->percentile = src->percentile;
	if (sets & QSPEC_BINS)
		dst->bins = src->bins;
	if (sets & QSPEC_SCALE) {
		dst->fixed = true;
		dst->scale = src->scale;
	}
	if (sets & QSPEC_ZERO_POINT)
		dst->zero_point = src->zero_point;
	if (sets & QSPEC_LEARNABLE)
		dst->learnable = src->learnable;
}

enum qcal_status qconfig_resolve(const struct qconfig *cfg,
				 const struct qp_table *table,
				 struct qconfig_spec *specs,
				 struct qcal_err *err)
{
	for (int r = 0; r < cfg->num_rules; r++) {
		bool used = false;
		for (int i = 0; i < table->count && !used; i++)
			used = rule_matches(&cfg->rules[r], &table->points[i]);
		if (!used)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "%s:%d: rule matches no quantization point of this model (see 'qcal points')",
					    cfg->path, cfg->rules[r].line);
	}
	for (int i = 0; i < table->count; i++) {
		const struct qp_point *p = &table->points[i];
		specs[i] = p->role == QP_ROLE_WEIGHT ? cfg->weights : cfg->activations;
		for (int r = 0; r < cfg->num_rules; r++)
			if (rule_matches(&cfg->rules[r], p))
				apply(&specs[i], &cfg->rules[r].spec, cfg->rules[r].sets);
		if (specs[i].quantize && specs[i].dtype == QCAL_DTYPE_FLOAT)
			specs[i].quantize = false;
		if (p->role == QP_ROLE_WEIGHT && specs[i].fixed)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "%s: weight point %s cannot take a fixed scale",
					    cfg->path, p->name);
		if (p->role != QP_ROLE_WEIGHT &&
		    !strcmp(specs[i].observer, "per_channel_minmax"))
			return qcal_err_set(err, QCAL_EFORMAT,
					    "%s: activation point %s cannot use per_channel_minmax",
					    cfg->path, p->name);
	}
	return QCAL_OK;
}

enum qcal_status qconfig_locate(const char *name_or_path, const char *dir,
				char *out, size_t out_size, struct qcal_err *err)
{
	struct stat sb;

	if (stat(name_or_path, &sb) == 0 && S_ISREG(sb.st_mode)) {
		snprintf(out, out_size, "%s", name_or_path);
		return QCAL_OK;
	}
	if (dir && !strchr(name_or_path, '/')) {
		snprintf(out, out_size, "%s/%s.yaml", dir, name_or_path);
		if (stat(out, &sb) == 0 && S_ISREG(sb.st_mode))
			return QCAL_OK;
	}
	return qcal_err_set(err, QCAL_ENOENT,
			    "config '%s' not found (neither a file nor a shipped config in %s)",
			    name_or_path, dir ? dir : "configs/");
}

static void write_spec_fields(FILE *f, const struct qconfig_spec *s, unsigned sets,
			      const char *indent)
{
	/* a dtype implies quantize: true; say it only when it carries meaning */
	if ((sets & QSPEC_QUANTIZE) && (!s->quantize || !(sets & QSPEC_DTYPE)))
		fprintf(f, "%squantize: %s\n", indent, s->quantize ? "true" : "false");
	if (sets & QSPEC_DTYPE)
		fprintf(f, "%sdtype: %s\n", indent, qcal_dtype_name(s->dtype));
	if (sets & QSPEC_SYMMETRIC)
		fprintf(f, "%ssymmetric: %s\n", indent, s->symmetric ? "true" : "false");
	if (sets & QSPEC_OBSERVER)
		fprintf(f, "%sobserver: %s\n", indent, s->observer);
	if (sets & QSPEC_PERCENTILE)
		fprintf(f, "%spercentile: %.10g\n", indent, s->percentile);
	if ((sets & QSPEC_BINS) && s->bins > 0)
		fprintf(f, "%sbins: %d\n", indent, s->bins);
	if (sets & QSPEC_SCALE)
		fprintf(f, "%sscale: %.17g\n", indent, s->scale);
	if (sets & QSPEC_ZERO_POINT)
		fprintf(f, "%szero_point: %d\n", indent, s->zero_point);
	if (sets & QSPEC_LEARNABLE)
		fprintf(f, "%slearnable: %s\n", indent, s->learnable ? "true" : "false");
}

/* Patterns are written single-quoted; a quote inside is doubled (YAML). */
static void write_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		fputc(*s, f);
	}
	fputc('\'', f);
}

static void write_globs(FILE *f, const char *key, char *const *globs, int n)
{
	fprintf(f, "%s: [", key);
	for (int i = 0; i < n; i++) {
		if (i)
			fputs(", ", f);
		write_quoted(f, globs[i]);
	}
	fputc(']', f);
}

enum qcal_status qconfig_write_with_promotions(const struct qconfig *cfg,
					       const char *path, const char *name,
					       const char *description,
					       const char *const *kinds, int num_kinds,
					       enum qcal_dtype dtype,
					       struct qcal_err *err)
{
	const unsigned all = QSPEC_QUANTIZE | QSPEC_DTYPE | QSPEC_SYMMETRIC | QSPEC_OBSERVER |
			     QSPEC_PERCENTILE | QSPEC_BINS | QSPEC_LEARNABLE;
	struct qcal_afile af;
	enum qcal_status st = qcal_afile_open(&af, path, err);
	FILE *f;

	if (st != QCAL_OK)
		return st;
	f = af.fp;
	fprintf(f, "# written by qcal from %s\nversion: 1\nname: ", cfg->path);
	write_quoted(f, name ? name : cfg->name);
	fprintf(f, "\ndescription: ");
	write_quoted(f, description ? description : cfg->description ? cfg->description : "");
	fprintf(f, "\ninput:\n  fold_normalization: %s\n", cfg->fold_input ? "true" : "false");
	fprintf(f, "defaults:\n  activations:\n");
	write_spec_fields(f, &cfg->activations, all, "    ");
	fprintf(f, "  weights:\n");
	write_spec_fields(f, &cfg->weights, all, "    ");
	fprintf(f, "rules:\n");
	for (int r = 0; r < cfg->num_rules; r++) {
		const struct qconfig_rule *rule = &cfg->rules[r];
		fprintf(f, "  - match: {");
		int first = 1;
		if (rule->num_names) {
			write_globs(f, "name", rule->names, rule->num_names);
			first = 0;
		}
		if (rule->num_kinds) {
			if (!first)
				fputs(", ", f);
			write_globs(f, "kind", rule->kinds, rule->num_kinds);
			first = 0;
		}
		if (rule->role >= 0)
			fprintf(f, "%srole: %s", first ? "" : ", ", qp_role_name((enum qp_role)rule->role));
		fprintf(f, "}\n");
		write_spec_fields(f, &rule->spec, rule->sets, "    ");
	}
	for (int k = 0; k < num_kinds; k++) {
		fprintf(f, "  - match: {kind: ");
		write_quoted(f, kinds[k]);
		fprintf(f, "}\n    dtype: %s\n", qcal_dtype_name(dtype));
	}
	if (cfg->num_rules == 0 && num_kinds == 0)
		fprintf(f, "  []\n");
	return qcal_afile_commit(&af, err);
}
