/*
 * Quantization configs: an ordered list of rules, read from YAML, that
 * decide for every quantization point its dtype, symmetry, observer and
 * (optionally) a fixed scale.  Resolution is CSS-like: start from the
 * defaults for the point's role, then apply every matching rule in file
 * order, each overriding only the fields it sets.  So a broad rule
 * ("layernorm.* -> int16") can be refined by a later narrow one
 * ("layernorm.out -> int8").
 *
 * The config is data, not code paths: the calibration engine, fake-quant
 * evaluation, QAT and reports all consume the resolved per-point specs.
 * Parse errors name the file, the line and the key.
 */
#ifndef QCAL_CALIB_QCONFIG_H
#define QCAL_CALIB_QCONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/status.h"
#include "model/qpoint.h"

#define QCONFIG_OBSERVER_MAX 32

/* The resolved quantization recipe of one point. */
struct qconfig_spec {
	bool quantize;            /* false: the point stays float */
	enum qcal_dtype dtype;
	bool symmetric;
	char observer[QCONFIG_OBSERVER_MAX]; /* observer kind name */
	double percentile;        /* for the percentile observer */
	int bins;                 /* histogram bins, 0 = observer default */
	bool fixed;               /* scale/zero_point fixed, not calibrated */
	double scale;
	int32_t zero_point;
	bool learnable;           /* QAT may learn the scale (LSQ) */
};

/* Which fields a rule sets (bit per field). */
enum {
	QSPEC_QUANTIZE = 1u << 0,
	QSPEC_DTYPE = 1u << 1,
	QSPEC_SYMMETRIC = 1u << 2,
	QSPEC_OBSERVER = 1u << 3,
	QSPEC_PERCENTILE = 1u << 4,
	QSPEC_BINS = 1u << 5,
	QSPEC_SCALE = 1u << 6,
	QSPEC_ZERO_POINT = 1u << 7,
	QSPEC_LEARNABLE = 1u << 8,
};

#define QCONFIG_MAX_GLOBS 8

struct qconfig_rule {
	int line;                          /* 1-based line in the file */
	int num_names, num_kinds;
	char *names[QCONFIG_MAX_GLOBS];    /* fnmatch globs on point names */
	char *kinds[QCONFIG_MAX_GLOBS];    /* fnmatch globs on kind names */
	int role;                          /* enum qp_role or -1 for any */
	unsigned sets;                     /* QSPEC_* */
	struct qconfig_spec spec;
};

struct qconfig {
	char *path;
	char *name;
	char *description;
	bool fold_input;                   /* input is (pixel-128)/128, norm folded */
	struct qconfig_spec activations;   /* defaults by role */
	struct qconfig_spec weights;
	struct qconfig_rule *rules;
	int num_rules;
};

/* Parse a YAML config file.  cfg is initialised by this call. */
enum qcal_status qconfig_load(struct qconfig *cfg, const char *path,
			      struct qcal_err *err);
/* Parse from memory (path is only used in messages). */
enum qcal_status qconfig_parse(struct qconfig *cfg, const char *path,
			       const char *text, size_t len,
			       struct qcal_err *err);
void qconfig_free(struct qconfig *cfg);

/*
 * Resolve a spec for every point of table (specs has table->count entries).
 * Fails if a rule matches no point at all (a typo would otherwise silently
 * do nothing), naming the rule's line.
 */
enum qcal_status qconfig_resolve(const struct qconfig *cfg,
				 const struct qp_table *table,
				 struct qconfig_spec *specs,
				 struct qcal_err *err);

/* Find a config by name ("j5") in dir (dir/<name>.yaml) or take it as a path;
 * writes the chosen path to out. */
enum qcal_status qconfig_locate(const char *name_or_path, const char *dir,
				char *out, size_t out_size, struct qcal_err *err);

/*
 * Write cfg as YAML (atomically), followed by extra rules that set the dtype
 * of every point whose kind is in kinds[] to `dtype` (used by auto-precision
 * to promote groups to int16).  name/description replace cfg's when given.
 */
enum qcal_status qconfig_write_with_promotions(const struct qconfig *cfg,
					       const char *path, const char *name,
					       const char *description,
					       const char *const *kinds, int num_kinds,
					       enum qcal_dtype dtype,
					       struct qcal_err *err);

#endif
