/*
 * Image sources for the CLI (see source.h).  HDF5 tensors are used as they
 * are: they must already carry the normalisation the model expects.
 */
#include "tools/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/tensor_source.h"
#include "datasets/dataset.h"
#include "datasets/loader.h"
#include "tools/cli.h"

struct source {
	bool images;                   /* true: dataset + loader */
	struct tensor_source tensors;
	struct dataset ds;
	struct loader *ld;
	char describe[512];
};

int source_parse_option(struct source_options *so, int c, const char *arg,
			const char *cmd)
{
	long v;

	switch (c) {
	case 'd':
		so->data = arg;
		return 1;
	case 1000:
		so->input = arg;
		return 1;
	case 1001:
		if (!cli_parse_int(arg, 1, 1L << 40, &v))
			return cli_usage_error(cmd, "--limit wants a positive count, got '%s'", arg), -1;
		so->limit = v;
		return 1;
	case 1002:
		if (!cli_parse_int(arg, 1, 1L << 40, &v))
			return cli_usage_error(cmd, "--sample wants a positive count, got '%s'", arg), -1;
		so->sample = v;
		return 1;
	case 1003:
		if (!cli_parse_int(arg, 0, 1L << 62, &v))
			return cli_usage_error(cmd, "--seed wants a non-negative integer, got '%s'", arg), -1;
		so->seed = (uint64_t)v;
		return 1;
	case 1004:
		if (!cli_parse_int(arg, 1, 64, &v))
			return cli_usage_error(cmd, "--workers wants 1..64, got '%s'", arg), -1;
		so->workers = (int)v;
		return 1;
	case 1005:
		so->skip_bad = true;
		return 1;
	case 1006:
		if (!cli_parse_int(arg, 1, 65535, &v))
			return cli_usage_error(cmd, "--resize wants 1..65535, got '%s'", arg), -1;
		so->resize_size = (int)v;
		return 1;
	case 1007:
		if (strcmp(arg, "bilinear") && strcmp(arg, "bicubic"))
			return cli_usage_error(cmd, "--interp wants bilinear or bicubic, got '%s'", arg), -1;
		so->interp = arg;
		return 1;
	}
	return 0;
}

static enum qcal_status open_images(struct source *s, const struct swin_config *cfg,
				    const struct source_options *opt, struct qcal_err *err)
{
	struct preprocess_options pre;
	struct loader_options lo;
	enum qcal_status st;

	st = dataset_open(&s->ds, opt->data, NULL, err);
	if (st != QCAL_OK)
		return st;
	st = dataset_check_classes(&s->ds, cfg->num_classes, err);
	if (st != QCAL_OK)
		return qcal_err_prefix(err, "model %s: ", cfg->name);
	if (opt->limit > 0)
		dataset_limit(&s->ds, (size_t)opt->limit);
	if (opt->sample > 0) {
		if ((size_t)opt->sample > s->ds.count)
			fprintf(stderr, "note: a sample of %ld images was asked for; %s has %zu: "
				"using all of them\n", opt->sample, opt->data, s->ds.count);
		st = dataset_sample(&s->ds, (size_t)opt->sample, opt->seed, err);
		if (st != QCAL_OK)
			return st;
	}
	if (cfg->in_chans != 3)
		return qcal_err_set(err, QCAL_EINVAL,
				    "model %s takes %d input channels; image folders give RGB",
				    cfg->name, cfg->in_chans);
	preprocess_options_init(&pre, cfg->img_size, cfg->mean, cfg->std);
	pre.norm = opt->folded ? PREPROCESS_NORM_FOLDED : PREPROCESS_NORM_MEAN_STD;
	if (opt->resize_size)
		pre.resize_size = opt->resize_size;
	if (opt->interp && (st = preprocess_interp_parse(opt->interp, &pre.interp, err)) != QCAL_OK)
		return st;
	loader_options_init(&lo, opt->batch, opt->workers > 0 ? opt->workers : 2, &pre);
	lo.skip_bad = opt->skip_bad;
	st = loader_open(&s->ld, &s->ds, &lo, err);
	if (st != QCAL_OK)
		return st;
	snprintf(s->describe, sizeof(s->describe), "%s (%zu images, %s)", opt->data,
		 s->ds.count, dataset_layout_name(s->ds.layout));
	return QCAL_OK;
}

enum qcal_status source_open(struct source **out, const struct swin_config *cfg,
			     const struct source_options *opt, struct qcal_err *err)
{
	struct source *s = calloc(1, sizeof(*s));
	enum qcal_status st;

	*out = NULL;
	if (!s)
		return qcal_err_set(err, QCAL_ENOMEM, "out of memory");
	if (opt->data) {
		s->images = true;
		st = open_images(s, cfg, opt, err);
		if (st != QCAL_OK) {
			source_free(s);
			return st;
		}
		*out = s;
		return QCAL_OK;
	}
	st = tensor_source_open_h5(&s->tensors, opt->input, opt->dataset ? opt->dataset : "input",
				   cfg, opt->batch, err);
	if (st != QCAL_OK) {
		free(s);
		return st;
	}
	if (opt->limit > 0 && opt->limit < s->tensors.n)
		s->tensors.n = (int)opt->limit;
	if (opt->sample > 0)
		fprintf(stderr, "note: --sample applies to image folders; using all %d tensors of %s\n",
			s->tensors.n, opt->input);
	snprintf(s->describe, sizeof(s->describe), "%s:%s (%d images)", opt->input,
		 opt->dataset ? opt->dataset : "input", s->tensors.n);
	*out = s;
	return QCAL_OK;
}

void source_free(struct source *s)
{
	if (!s)
		return;
	loader_close(s->ld);
	dataset_free(&s->ds);
	tensor_source_free(&s->tensors);
	free(s);
}

size_t source_count(const struct source *s)
{
	return s->images ? loader_total(s->ld) : (size_t)s->tensors.n;
}

size_t source_skipped(const struct source *s, const char **first)
{
	size_t n = 0;
	const struct loader_skip *sk = s->images ? loader_skipped(s->ld, &n) : NULL;

	if (first)
		*first = n ? sk[0].message : NULL;
	return n;
}

enum qcal_status source_next(void *user, struct eval_batch *b, struct qcal_err *err)
{
	struct source *s = user;
	struct loader_batch lb;
	enum qcal_status st;

	if (!s->images)
		return tensor_source_next(&s->tensors, b, err);
	st = loader_next(s->ld, &lb, err);
	if (st != QCAL_OK)
		return st;
	b->images = lb.images;
	b->labels = lb.labels;
	b->count = lb.count;
	return QCAL_OK;
}

const char *source_describe(const struct source *s)
{
	return s->describe;
}
