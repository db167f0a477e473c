/*
 * The prefetching loader (see loader.h).  Batch b lives in slot b % nslots.
 * A worker claims the next unfilled batch only when its slot is FREE (the
 * batch nslots earlier was handed back), fills it without the lock and
 * marks it READY; the caller waits for slot next_take % nslots to hold
 * that batch, marks it IN_USE and frees it on its next call.  So order
 * follows the batch number, never which worker finished first.  One mutex,
 * two condition variables (work available, batch ready) and an atomic stop
 * flag (checked between images) are all the synchronisation.  Each worker
 * reuses its own read buffer, decoded image, resize scratch and
 * augmentation buffer, so steady state allocates nothing.
 */
#include "datasets/loader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum slot_state { SLOT_FREE = 0, SLOT_FILLING, SLOT_READY, SLOT_IN_USE };

struct slot_skip {
	size_t index;
	char message[QCAL_ERR_MSG_MAX];
};

struct slot {
	enum slot_state state;
	size_t number;
	float *images;          /* (batch, 3, size, size) */
	int *labels;
	size_t *indices;
	int count;
	struct slot_skip *skips; /* grown by the filling worker on demand */
	int nskips, skips_cap;
	struct qcal_err err;     /* err.status != OK: the batch failed */
};

struct worker {
	struct loader *ld;
	pthread_t thread;
	bool started;
	uint8_t *file;
	size_t file_cap;
	struct image_u8 decoded, geom, augmented;
	struct preprocess_scratch scratch;
};

struct loader {
	const struct dataset *ds;
	struct loader_options opt;
	struct augment_options aug;
	bool has_aug;
	struct preprocess_lut lut;
	size_t *order;          /* epoch order (shuffle), or NULL for identity */
	size_t epoch_images;    /* images in the whole epoch */
	size_t nbatches;
	size_t per_image;       /* floats per image */

	pthread_mutex_t mu;
	pthread_cond_t work_cv, ready_cv;
	size_t next_fill, next_take;
	int nslots, in_use;
	struct slot *slots;
	int nworkers;
	struct worker *workers;
	atomic_bool stop;
	struct qcal_err failed; /* sticky error once delivered */

	struct loader_skip *skipped;
	size_t nskipped, skipped_cap;
};

void loader_options_init(struct loader_options *o, int batch, int workers,
			 const struct preprocess_options *pre)
{
	memset(o, 0, sizeof(*o));
	o->batch = batch;
	o->workers = workers;
	if (pre)
		o->pre = *pre;
}

/* Errors that concern one file (skippable), as opposed to the process. */
static bool is_file_error(enum qcal_status st)
{
	return st == QCAL_EFORMAT || st == QCAL_EIO || st == QCAL_ENOENT || st == QCAL_ERANGE;
}

/* Read, decode, crop, augment and normalise dataset item idx into out. */
static enum qcal_status load_one(struct worker *w, size_t idx, float *out,
				 struct qcal_err *err)
{
	struct loader *ld = w->ld;
	const char *path = ld->ds->items[idx].path;
	int size = ld->opt.pre.size;
	const uint8_t *pixels;
	enum qcal_status st;
	size_t bytes;

	st = image_read_file(path, &w->file, &w->file_cap, &bytes, &ld->opt.decode, err);
	if (st != QCAL_OK)
		return st;
	st = image_decode_mem(&w->decoded, w->file, bytes, path, &ld->opt.decode, err);
	if (st != QCAL_OK)
		return st;
	if (w->decoded.w == size && w->decoded.h == size) {
		pixels = w->decoded.data; /* model-sized: straight through */
	} else {
		st = preprocess_geometry(&w->geom, &w->decoded, &ld->opt.pre, &w->scratch, err);
		if (st != QCAL_OK)
			return qcal_err_prefix(err, "%s: ", path);
		pixels = w->geom.data;
	}
	if (ld->has_aug) {
		struct augment_draw d = augment_draw(&ld->aug, ld->opt.epoch, idx);
		st = image_reserve(&w->augmented, size, size, 0, path, err);
		if (st != QCAL_OK)
			return st;
		augment_apply(w->augmented.data, pixels, size, size, &ld->aug, &d);
		pixels = w->augmented.data;
	}
	preprocess_normalize(out, pixels, size, size, &ld->lut);
	return QCAL_OK;
}

static void fill_slot(struct worker *w, struct slot *s, size_t b)
{
	struct loader *ld = w->ld;
	size_t first = b * (size_t)ld->opt.batch;
	size_t n = ld->epoch_images - first < (size_t)ld->opt.batch ? ld->epoch_images - first
								   : (size_t)ld->opt.batch;
	struct qcal_err err;

	s->count = 0;
	s->nskips = 0;
	qcal_err_clear(&s->err);
	for (size_t k = 0; k < n; k++) {
		size_t idx = ld->order ? ld->order[first + k] : first + k;
		enum qcal_status st;

		if (atomic_load(&ld->stop))
			return;
		qcal_err_clear(&err);
		st = load_one(w, idx, s->images + (size_t)s->count * ld->per_image, &err);
		if (st == QCAL_OK) {
			s->labels[s->count] = ld->ds->items[idx].label;
			s->indices[s->count] = idx;
			s->count++;
		} else if (ld->opt.skip_bad && is_file_error(st)) {
			if (s->nskips == s->skips_cap) {
				int cap = s->skips_cap ? 2 * s->skips_cap : 4;
				struct slot_skip *v = realloc(s->skips, (size_t)cap * sizeof(*v));
				if (!v) {
					qcal_err_set(&s->err, QCAL_ENOMEM, "loader: out of memory");
					return;
				}
				s->skips = v;
				s->skips_cap = cap;
			}
			s->skips[s->nskips].index = idx;
			memcpy(s->skips[s->nskips].message, err.msg, sizeof(err.msg));
			s->nskips++;
		} else {
			s->err = err;
			if (s->err.status == QCAL_OK) /* a callee without err text */
				qcal_err_set(&s->err, st, "%s: %s", ld->ds->items[idx].path,
					     qcal_status_name(st));
			return;
		}
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct loader *ld = w->ld;

	pthread_mutex_lock(&ld->mu);
	for (;;) {
		struct slot *s = NULL;
		while (!atomic_load(&ld->stop)) {
			if (ld->next_fill < ld->nbatches) {
				s = &ld->slots[ld->next_fill % (size_t)ld->nslots];
				if (s->state == SLOT_FREE)
					break;
			}
			s = NULL;
			pthread_cond_wait(&ld->work_cv, &ld->mu);
		}
		if (!s)
			break;
		size_t b = ld->next_fill++;
		s->state = SLOT_FILLING;
		s->number = b;
		pthread_mutex_unlock(&ld->mu);

		fill_slot(w, s, b);

		pthread_mutex_lock(&ld->mu);
		s->state = SLOT_READY;
		pthread_cond_broadcast(&ld->ready_cv);
	}
	pthread_mutex_unlock(&ld->mu);
	return NULL;
}

static enum qcal_status validate(const struct dataset *ds, const struct loader_options *o,
				 struct qcal_err *err)
{
	enum qcal_status st;

	if (!ds || ds->count == 0)
		return qcal_err_set(err, QCAL_EFORMAT, "loader: %s: the image set is empty",
				    ds && ds->source ? ds->source : "(none)");
	if (o->batch < 1 || o->batch > 65536)
		return qcal_err_set(err, QCAL_EINVAL, "loader: batch %d must be in 1..65536",
				    o->batch);
	if (o->workers < 1 || o->workers > 64)
		return qcal_err_set(err, QCAL_EINVAL, "loader: workers %d must be in 1..64",
				    o->workers);
	if (o->prefetch < 0 || o->prefetch > 256)
		return qcal_err_set(err, QCAL_EINVAL, "loader: prefetch %d must be in 0..256",
				    o->prefetch);
	st = preprocess_validate(&o->pre, err);
	if (st != QCAL_OK)
		return st;
	if (o->augment) {
		st = augment_validate(o->augment, o->pre.size, o->pre.size, err);
		if (st != QCAL_OK)
			return st;
	}
	size_t per_batch = (size_t)3 * o->pre.size * o->pre.size * (size_t)o->batch;
	if (per_batch / (size_t)o->batch / 3 != (size_t)o->pre.size * o->pre.size ||
	    per_batch > ((size_t)1 << 34) / sizeof(float))
		return qcal_err_set(err, QCAL_EINVAL,
				    "loader: batch %d of %dx%d images is too large", o->batch,
				    o->pre.size, o->pre.size);
	return QCAL_OK;
}

enum qcal_status loader_open(struct loader **out, const struct dataset *ds,
			     const struct loader_options *opt, struct qcal_err *err)
{
	struct loader *ld;
	enum qcal_status st;

	*out = NULL;
	st = validate(ds, opt, err);
	if (st != QCAL_OK)
		return st;
	ld = calloc(1, sizeof(*ld));
	if (!ld)
		return qcal_err_set(err, QCAL_ENOMEM, "loader: out of memory");
	ld->ds = ds;
	ld->opt = *opt;
	ld->opt.augment = NULL; /* copied below; the caller's struct may go away */
	if (opt->augment) {
		ld->aug = *opt->augment;
		ld->has_aug = true;
	}
	preprocess_lut_init(&ld->lut, &ld->opt.pre);
	ld->per_image = (size_t)3 * opt->pre.size * opt->pre.size;
	ld->epoch_images = ds->count;
	ld->nbatches = (ds->count + (size_t)opt->batch - 1) / (size_t)opt->batch;
	ld->next_fill = ld->next_take = opt->first_batch < ld->nbatches ? opt->first_batch
									: ld->nbatches;
	ld->in_use = -1;
	atomic_init(&ld->stop, false);
	pthread_mutex_init(&ld->mu, NULL);
	pthread_cond_init(&ld->work_cv, NULL);
	pthread_cond_init(&ld->ready_cv, NULL);
	if (opt->shuffle) {
		ld->order = malloc(ds->count * sizeof(*ld->order));
		if (!ld->order)
			goto out_nomem;
		dataset_epoch_order(ld->order, ds->count, opt->shuffle_seed, opt->epoch);
	}

	ld->nslots = (opt->prefetch ? opt->prefetch : opt->workers + 1) + 1;
	ld->slots = calloc((size_t)ld->nslots, sizeof(*ld->slots));
	if (!ld->slots)
		goto out_nomem;
	for (int i = 0; i < ld->nslots; i++) {
		struct slot *s = &ld->slots[i];
		s->images = malloc(ld->per_image * (size_t)opt->batch * sizeof(float));
		s->labels = malloc((size_t)opt->batch * sizeof(int));
		s->indices = malloc((size_t)opt->batch * sizeof(size_t));
		if (!s->images || !s->labels || !s->indices)
			goto out_nomem;
	}

	ld->workers = calloc((size_t)opt->workers, sizeof(*ld->workers));
	if (!ld->workers)
		goto out_nomem;
	ld->nworkers = opt->workers;
	for (int i = 0; i < ld->nworkers; i++) {
		ld->workers[i].ld = ld;
		if (pthread_create(&ld->workers[i].thread, NULL, worker_main, &ld->workers[i])) {
			st = qcal_err_set(err, QCAL_EIO, "loader: cannot start worker thread %d", i);
			goto out_close;
		}
		ld->workers[i].started = true;
	}
	*out = ld;
	return QCAL_OK;

out_nomem:
	st = qcal_err_set(err, QCAL_ENOMEM, "loader: out of memory for %d batches of %d images",
			  ld->nslots, opt->batch);
out_close:
	loader_close(ld);
	return st;
}

static enum qcal_status record_skips(struct loader *ld, const struct slot *s,
				     struct qcal_err *err)
{
	for (int i = 0; i < s->nskips; i++) {
		if (ld->nskipped == ld->skipped_cap) {
			size_t cap = ld->skipped_cap ? 2 * ld->skipped_cap : 16;
			struct loader_skip *v = realloc(ld->skipped, cap * sizeof(*v));
			if (!v)
				return qcal_err_set(err, QCAL_ENOMEM, "loader: out of memory");
			ld->skipped = v;
			ld->skipped_cap = cap;
		}
		struct loader_skip *k = &ld->skipped[ld->nskipped];
		k->index = s->skips[i].index;
		k->path = ld->ds->items[k->index].path;
		k->message = strdup(s->skips[i].message);
		if (!k->message)
			return qcal_err_set(err, QCAL_ENOMEM, "loader: out of memory");
		ld->nskipped++;
	}
	return QCAL_OK;
}

enum qcal_status loader_next(struct loader *ld, struct loader_batch *batch,
			     struct qcal_err *err)
{
	enum qcal_status st;
	struct slot *s;

	memset(batch, 0, sizeof(*batch));
	pthread_mutex_lock(&ld->mu);
	if (ld->in_use >= 0) {
		ld->slots[ld->in_use].state = SLOT_FREE;
		ld->in_use = -1;
		pthread_cond_broadcast(&ld->work_cv);
	}
	if (ld->failed.status != QCAL_OK) {
		st = ld->failed.status;
		if (err)
			*err = ld->failed;
		goto out_unlock;
	}
	for (;;) {
		if (ld->next_take >= ld->nbatches) {
			batch->number = ld->next_take;
			st = QCAL_OK;
			goto out_unlock;
		}
		s = &ld->slots[ld->next_take % (size_t)ld->nslots];
		while (!(s->state == SLOT_READY && s->number == ld->next_take))
			pthread_cond_wait(&ld->ready_cv, &ld->mu);
		st = s->err.status;
		if (st == QCAL_OK)
			st = record_skips(ld, s, &ld->failed);
		else
			ld->failed = s->err;
		if (st != QCAL_OK) {
			/* Stop the workers; the error stays for every later call. */
			atomic_store(&ld->stop, true);
			pthread_cond_broadcast(&ld->work_cv);
			s->state = SLOT_FREE;
			if (err)
				*err = ld->failed;
			goto out_unlock;
		}
		if (s->count > 0)
			break;
		/* Every file of this batch was skipped: a count of 0 would read
		 * as the end of the epoch, so move on to the next batch. */
		s->state = SLOT_FREE;
		ld->next_take++;
		pthread_cond_broadcast(&ld->work_cv);
	}
	s->state = SLOT_IN_USE;
	ld->in_use = (int)(ld->next_take % (size_t)ld->nslots);
	ld->next_take++;
	batch->images = s->images;
	batch->labels = s->labels;
	batch->indices = s->indices;
	batch->count = s->count;
	batch->number = s->number;
	batch->skipped = s->nskips;
out_unlock:
	pthread_mutex_unlock(&ld->mu);
	return st;
}

size_t loader_total(const struct loader *ld)
{
	size_t first = ld->opt.first_batch * (size_t)ld->opt.batch;
	return first < ld->epoch_images ? ld->epoch_images - first : 0;
}

size_t loader_batch_count(const struct loader *ld)
{
	return ld->nbatches;
}

const struct loader_skip *loader_skipped(const struct loader *ld, size_t *n)
{
	*n = ld->nskipped;
	return ld->skipped;
}

void loader_close(struct loader *ld)
{
	if (!ld)
		return;
	pthread_mutex_lock(&ld->mu);
	atomic_store(&ld->stop, true);
	pthread_cond_broadcast(&ld->work_cv);
	pthread_mutex_unlock(&ld->mu);
	for (int i = 0; ld->workers && i < ld->nworkers; i++) {
		struct worker *w = &ld->workers[i];
		if (w->started)
			pthread_join(w->thread, NULL);
		free(w->file);
		image_free(&w->decoded);
		image_free(&w->geom);
		image_free(&w->augmented);
		preprocess_scratch_free(&w->scratch);
	}
	free(ld->workers);
	for (int i = 0; ld->slots && i < ld->nslots; i++) {
		free(ld->slots[i].images);
		free(ld->slots[i].labels);
		free(ld->slots[i].indices);
		free(ld->slots[i].skips);
	}
	free(ld->slots);
	for (size_t i = 0; i < ld->nskipped; i++)
		free(ld->skipped[i].message);
	free(ld->skipped);
	free(ld->order);
	pthread_cond_destroy(&ld->work_cv);
	pthread_cond_destroy(&ld->ready_cv);
	pthread_mutex_destroy(&ld->mu);
	free(ld);
}
