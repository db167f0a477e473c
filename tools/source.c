/*
 * Image sources for the CLI (see source.h).  HDF5 tensors are used as they
 * are: they must already carry the normalisation the model expects.
 */
#include "tools/source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/tensor_source.h"

struct source {
	struct tensor_source tensors;
	char describe[512];
};

enum qcal_status source_open(struct source **out, const struct swin_config *cfg,
			     const struct source_options *opt, struct qcal_err *err)
{
	struct source *s = calloc(1, sizeof(*s));
	enum qcal_status st;

	*out = NULL;
	if (!s)
		return qcal_err_set(err, QCAL_ENOMEM, "out of memory");
	if (opt->input) {
		st = tensor_source_open_h5(&s->tensors, opt->input,
					   opt->dataset ? opt->dataset : "input", cfg,
					   opt->batch, err);
		if (st != QCAL_OK) {
			free(s);
			return st;
		}
		long n = s->tensors.n;
		if (opt->limit > 0 && opt->limit < n)
			s->tensors.n = (int)opt->limit;
		snprintf(s->describe, sizeof(s->describe), "%s:%s (%d images)", opt->input,
			 opt->dataset ? opt->dataset : "input", s->tensors.n);
		*out = s;
		return QCAL_OK;
	}
	free(s);
	return qcal_err_set(err, QCAL_EINVAL, "image folders are not supported yet; use --input");
}

void source_free(struct source *s)
{
	if (!s)
		return;
	tensor_source_free(&s->tensors);
	free(s);
}

size_t source_count(const struct source *s)
{
	return (size_t)s->tensors.n;
}

size_t source_skipped(const struct source *s)
{
	(void)s;
	return 0;
}

enum qcal_status source_next(void *user, struct eval_batch *b, struct qcal_err *err)
{
	struct source *s = user;
	return tensor_source_next(&s->tensors, b, err);
}

const char *source_describe(const struct source *s)
{
	return s->describe;
}
