/* Batches from preloaded tensors; see tensor_source.h. */
#include "calib/tensor_source.h"

#include <stdlib.h>
#include <string.h>

#include "core/h5.h"

enum qcal_status tensor_source_open_h5(struct tensor_source *s, const char *path,
				       const char *name, const struct swin_config *cfg,
				       int batch, struct qcal_err *err)
{
	struct qcal_h5_shape shape;
	enum qcal_status st;
	hid_t f;

	memset(s, 0, sizeof(*s));
	f = qcal_h5_open_read(path, err);
	if (f < 0)
		return err ? err->status : QCAL_EFORMAT;
	st = qcal_h5_read_float(f, path, name, &s->images, &shape, err);
	if (st != QCAL_OK)
		goto out_close;
	if (shape.ndim != 4 || shape.dims[1] != cfg->in_chans ||
	    shape.dims[2] != cfg->img_size || shape.dims[3] != cfg->img_size ||
	    shape.dims[0] < 1 || shape.dims[0] > 1 << 30) {
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "%s: dataset %s must be (N, %d, %d, %d) normalised images",
				  path, name, cfg->in_chans, cfg->img_size, cfg->img_size);
		goto out_close;
	}
	s->n = (int)shape.dims[0];
	s->batch = batch;
	s->per_image = (size_t)cfg->in_chans * cfg->img_size * cfg->img_size;
	s->labels = malloc((size_t)s->n * sizeof(int));
	if (!s->labels) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
		goto out_close;
	}
	if (H5Lexists(f, "labels", H5P_DEFAULT) > 0) {
		int64_t *labels;
		struct qcal_h5_shape ls;
		st = qcal_h5_read_int64(f, path, "labels", &labels, &ls, err);
		if (st != QCAL_OK)
			goto out_close;
		if (qcal_h5_shape_numel(&ls) != (size_t)s->n) {
			free(labels);
			st = qcal_err_set(err, QCAL_EFORMAT, "%s: labels has %zu entries, %s has %d images",
					  path, qcal_h5_shape_numel(&ls), name, s->n);
			goto out_close;
		}
		for (int i = 0; i < s->n; i++)
			s->labels[i] = labels[i] >= 0 && labels[i] < cfg->num_classes ? (int)labels[i] : -1;
		free(labels);
	} else {
		for (int i = 0; i < s->n; i++)
			s->labels[i] = -1;
	}
out_close:
	H5Fclose(f);
	if (st != QCAL_OK)
		tensor_source_free(s);
	return st;
}

void tensor_source_free(struct tensor_source *s)
{
	if (!s)
		return;
	free(s->images);
	free(s->labels);
	memset(s, 0, sizeof(*s));
}

void tensor_source_rewind(struct tensor_source *s)
{
	s->next = 0;
}

enum qcal_status tensor_source_next(void *user, struct eval_batch *b,
				    struct qcal_err *err)
{
	struct tensor_source *s = user;
	int n = s->n - s->next < s->batch ? s->n - s->next : s->batch;

	(void)err;
	b->images = s->images + (size_t)s->next * s->per_image;
	b->labels = s->labels + s->next;
	b->count = n;
	s->next += n;
	return QCAL_OK;
}
