/*
 * Image-set scanning, list parsing, selection and shuffling (dataset.h).
 *
 * ImageFolder's order is sorted(os.walk(class_dir)) with sorted file names
 * inside each directory: directories ordered by their full path string,
 * then files by name.  The walk below collects every directory under a
 * class (following symlinks, as ImageFolder does, but refusing loops),
 * sorts them by path and appends each one's sorted image files.  Paths go
 * into one string pool so a million-image set is a few allocations.
 */
#include "datasets/dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/atomic_file.h"
#include "core/rng.h"

#define WALK_MAX_DEPTH 64

static const char *const image_exts[] = {
	".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp",
};

static bool has_image_ext(const char *name)
{
	size_t n = strlen(name);

	for (size_t i = 0; i < sizeof(image_exts) / sizeof(image_exts[0]); i++) {
		size_t e = strlen(image_exts[i]);
		if (n >= e && !strcasecmp(name + n - e, image_exts[i]))
			return true;
	}
	return false;
}

const char *dataset_layout_name(enum dataset_layout layout)
{
	switch (layout) {
	case DATASET_AUTO: return "auto";
	case DATASET_CLASS_FOLDERS: return "class folders";
	case DATASET_LIST: return "list file";
	case DATASET_UNLABELLED: return "unlabelled";
	}
	return "unknown";
}

/* ------------------------------------------------------------ builders */

struct names {
	char **v;
	size_t n, cap;
};

static int names_push(struct names *s, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		char **v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return -1;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n] = strdup(name);
	if (!s->v[s->n])
		return -1;
	s->n++;
	return 0;
}

static void names_free(struct names *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_sort(struct names *s)
{
	if (s->n > 1)
		qsort(s->v, s->n, sizeof(*s->v), cmp_str);
}

/* Items under construction: path offsets into a growing pool. */
struct builder {
	char *pool;
	size_t pool_len, pool_cap;
	size_t *off;
	int *label;
	size_t n, cap;
};

static int builder_add(struct builder *b, const char *dir, const char *name, int label)
{
	size_t dl = dir ? strlen(dir) : 0, nl = strlen(name);
	bool slash = dl > 0 && dir[dl - 1] != '/';
	size_t need = dl + slash + nl + 1;

	if (b->pool_len + need > b->pool_cap) {
		size_t cap = b->pool_cap ? b->pool_cap : 4096;
		while (cap < b->pool_len + need)
			cap *= 2;
		char *p = realloc(b->pool, cap);
		if (!p)
			return -1;
		b->pool = p;
		b->pool_cap = cap;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? 2 * b->cap : 256;
		size_t *off = realloc(b->off, cap * sizeof(*off));
		if (!off)
			return -1;
		b->off = off;
		int *lab = realloc(b->label, cap * sizeof(*lab));
		if (!lab)
			return -1;
		b->label = lab;
		b->cap = cap;
	}
	char *p = b->pool + b->pool_len;
	if (dl)
		memcpy(p, dir, dl);
	if (slash)
		p[dl] = '/';
	memcpy(p + dl + slash, name, nl + 1);
	b->off[b->n] = b->pool_len;
	b->label[b->n] = label;
	b->n++;
	b->pool_len += need;
	return 0;
}

static void builder_free(struct builder *b)
{
	free(b->pool);
	free(b->off);
	free(b->label);
	memset(b, 0, sizeof(*b));
}

/* Move the builder's items into ds (pointers into the pool). */
static enum qcal_status builder_finish(struct builder *b, struct dataset *ds,
				       struct qcal_err *err)
{
	ds->items = malloc((b->n ? b->n : 1) * sizeof(*ds->items));
	if (!ds->items)
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", ds->source);
	for (size_t i = 0; i < b->n; i++) {
		ds->items[i].path = b->pool + b->off[i];
		ds->items[i].label = b->label[i];
	}
	ds->count = b->n;
	ds->pool = b->pool;
	b->pool = NULL;
	builder_free(b);
	return QCAL_OK;
}

/* ---------------------------------------------------------- directories */

static char *path_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	bool slash = dl > 0 && dir[dl - 1] != '/';
	char *p = malloc(dl + slash + nl + 1);

	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (slash)
		p[dl] = '/';
	memcpy(p + dl + slash, name, nl + 1);
	return p;
}

/*
 * Subfolder names and image-file names of dir (each sorted).  Symlinks are
 * followed to decide; a dangling entry counts as a file, as os.walk does.
 */
static enum qcal_status list_dir(const char *dir, struct names *dirs,
				 struct names *files, struct qcal_err *err)
{
	enum qcal_status st = QCAL_OK;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return qcal_err_set(err, errno == ENOENT ? QCAL_ENOENT : QCAL_EIO,
				    "%s: cannot read folder: %s", dir, strerror(errno));
	for (;;) {
		errno = 0;
		e = readdir(d);
		if (!e) {
			if (errno)
				st = qcal_err_set(err, QCAL_EIO, "%s: cannot read folder: %s",
						  dir, strerror(errno));
			break;
		}
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		bool is_dir = e->d_type == DT_DIR;
		if (e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
			struct stat sb;
			char *full = path_join(dir, e->d_name);
			if (!full) {
				st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", dir);
				break;
			}
			is_dir = stat(full, &sb) == 0 && S_ISDIR(sb.st_mode);
			free(full);
		}
		if (is_dir ? names_push(dirs, e->d_name)
			   : has_image_ext(e->d_name) && names_push(files, e->d_name)) {
			st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", dir);
			break;
		}
	}
	closedir(d);
	names_sort(dirs);
	names_sort(files);
	return st;
}

struct walk_dir {
	char *path;
	struct names files;
};

struct walk {
	struct walk_dir *v;
	size_t n, cap;
	dev_t dev[WALK_MAX_DEPTH + 1];
	ino_t ino[WALK_MAX_DEPTH + 1];
};

static int cmp_walk_dir(const void *a, const void *b)
{
	return strcmp(((const struct walk_dir *)a)->path, ((const struct walk_dir *)b)->path);
}

static void walk_free(struct walk *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->v[i].path);
		names_free(&w->v[i].files);
	}
	free(w->v);
	memset(w, 0, sizeof(*w));
}

/* Collect dir and everything below it (depth = number of ancestors). */
static enum qcal_status walk_collect(struct walk *w, const char *dir, int depth,
				     struct qcal_err *err)
{
	struct names dirs = { 0 }, files = { 0 };
	enum qcal_status st;
	struct stat sb;

	if (stat(dir, &sb) != 0)
		return qcal_err_set(err, QCAL_EIO, "%s: cannot read folder: %s", dir,
				    strerror(errno));
	for (int i = 0; i < depth; i++) {
		if (w->dev[i] == sb.st_dev && w->ino[i] == sb.st_ino)
			return qcal_err_set(err, QCAL_EFORMAT,
					    "%s: folder loop (a symlink points back to an ancestor)",
					    dir);
	}
	if (depth >= WALK_MAX_DEPTH)
		return qcal_err_set(err, QCAL_EFORMAT, "%s: folders nested deeper than %d",
				    dir, WALK_MAX_DEPTH);
	w->dev[depth] = sb.st_dev;
	w->ino[depth] = sb.st_ino;
	st = list_dir(dir, &dirs, &files, err);
	if (st != QCAL_OK)
		goto out_free_names;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 16;
		struct walk_dir *v = realloc(w->v, cap * sizeof(*v));
		if (!v) {
			st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", dir);
			goto out_free_names;
		}
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n].path = strdup(dir);
	if (!w->v[w->n].path) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", dir);
		goto out_free_names;
	}
	w->v[w->n].files = files;
	memset(&files, 0, sizeof(files));
	w->n++;
	for (size_t i = 0; i < dirs.n && st == QCAL_OK; i++) {
		char *sub = path_join(dir, dirs.v[i]);
		if (!sub) {
			st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", dir);
			break;
		}
		st = walk_collect(w, sub, depth + 1, err);
		free(sub);
	}
out_free_names:
	names_free(&dirs);
	names_free(&files);
	return st;
}

/* Append every image under dir, in ImageFolder order, with label. */
static enum qcal_status add_tree(struct builder *b, const char *dir, int label,
				 size_t *added, struct qcal_err *err)
{
	struct walk w = { 0 };
	enum qcal_status st = walk_collect(&w, dir, 0, err);
	size_t before = b->n;

	if (st == QCAL_OK) {
		qsort(w.v, w.n, sizeof(*w.v), cmp_walk_dir);
		for (size_t i = 0; i < w.n && st == QCAL_OK; i++)
			for (size_t j = 0; j < w.v[i].files.n; j++)
				if (builder_add(b, w.v[i].path, w.v[i].files.v[j], label)) {
					st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", dir);
					break;
				}
	}
	*added = b->n - before;
	walk_free(&w);
	return st;
}

static enum qcal_status open_folder(struct dataset *ds, enum dataset_layout layout,
				    struct qcal_err *err)
{
	struct names dirs = { 0 }, files = { 0 };
	struct builder b = { 0 };
	enum qcal_status st;
	size_t added;

	st = list_dir(ds->source, &dirs, &files, err);
	if (st != QCAL_OK)
		goto out_free;
	if (layout == DATASET_AUTO) {
		if (dirs.n && files.n) {
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "%s: holds both image files (%s, ...) and subfolders (%s, ...); "
					  "choose class folders or unlabelled explicitly",
					  ds->source, files.v[0], dirs.v[0]);
			goto out_free;
		}
		layout = dirs.n ? DATASET_CLASS_FOLDERS : DATASET_UNLABELLED;
	}
	ds->layout = layout;
	if (layout == DATASET_UNLABELLED) {
		st = add_tree(&b, ds->source, -1, &added, err);
		if (st == QCAL_OK && added == 0)
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "%s: no image files (.jpg .jpeg .png ...) in this folder",
					  ds->source);
		if (st != QCAL_OK)
			goto out_free;
	} else {
		if (dirs.n == 0) {
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "%s: no class subfolders (expected <folder>/<class>/<image>)",
					  ds->source);
			goto out_free;
		}
		if (dirs.n > INT_MAX) {
			st = qcal_err_set(err, QCAL_ERANGE, "%s: too many class folders",
					  ds->source);
			goto out_free;
		}
		for (size_t c = 0; c < dirs.n; c++) {
			char *sub = path_join(ds->source, dirs.v[c]);
			if (!sub) {
				st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", ds->source);
				goto out_free;
			}
			st = add_tree(&b, sub, (int)c, &added, err);
			if (st == QCAL_OK && added == 0)
				st = qcal_err_set(err, QCAL_EFORMAT,
						  "%s: class folder '%s' has no image files (.jpg .jpeg .png ...)",
						  ds->source, dirs.v[c]);
			free(sub);
			if (st != QCAL_OK)
				goto out_free;
		}
		ds->num_classes = (int)dirs.n;
		ds->class_names = dirs.v;
		memset(&dirs, 0, sizeof(dirs));
	}
	st = builder_finish(&b, ds, err);
out_free:
	names_free(&dirs);
	names_free(&files);
	builder_free(&b);
	return st;
}

/* ------------------------------------------------------------ list files */

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

static enum qcal_status open_list(struct dataset *ds, const char *root,
				  struct qcal_err *err)
{
	struct builder b = { 0 };
	enum qcal_status st;
	char *text = NULL, *base = NULL, *line, *next;
	size_t size, lineno = 0;
	int labelled = -1, max_label = -1;

	ds->layout = DATASET_LIST;
	st = qcal_read_file(ds->source, &text, &size, err);
	if (st != QCAL_OK)
		return st;
	if (strlen(text) != size) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: list file contains a NUL byte",
				  ds->source);
		goto out_free;
	}
	base = root ? strdup(root) : dir_of(ds->source);
	if (!base) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", ds->source);
		goto out_free;
	}
	for (line = text; line; line = next) {
		char *end, *p, *last;
		long label = -1;
		struct stat sb;

		lineno++;
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		end = line + strlen(line);
		while (end > line && isspace((unsigned char)end[-1]))
			*--end = '\0';
		while (isspace((unsigned char)*line))
			line++;
		if (!*line || *line == '#')
			continue;
		/* The last whitespace-separated token is the label if it is an
		 * integer; the rest (spaces allowed) is the path. */
		last = end;
		while (last > line && !isspace((unsigned char)last[-1]))
			last--;
		p = NULL;
		if (last > line) {
			errno = 0;
			label = strtol(last, &p, 10);
		}
		/* An integer-looking last token is a label (checked); anything
		 * else belongs to the path. */
		bool has_label = last > line && p && *p == '\0' && p != last;
		if (has_label) {
			if (errno || label < 0 || label > 1000000) {
				st = qcal_err_set(err, QCAL_EFORMAT,
						  "%s:%zu: label '%s' must be an integer in 0..1000000",
						  ds->source, lineno, last);
				goto out_free;
			}
			end = last;
			while (end > line && isspace((unsigned char)end[-1]))
				*--end = '\0';
		} else {
			label = -1;
		}
		if (labelled < 0)
			labelled = has_label;
		if (labelled != has_label) {
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "%s:%zu: '%s' %s a label but the first entry %s; "
					  "expected 'path label' on every line or on none",
					  ds->source, lineno, line, has_label ? "has" : "lacks",
					  labelled ? "has one" : "does not");
			goto out_free;
		}
		if (builder_add(&b, line[0] == '/' ? NULL : base, line, (int)label)) {
			st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", ds->source);
			goto out_free;
		}
		const char *full = b.pool + b.off[b.n - 1];
		if (stat(full, &sb) != 0) {
			int e = errno;
			st = qcal_err_set(err, e == ENOENT || e == ENOTDIR ? QCAL_ENOENT : QCAL_EIO,
					  "%s:%zu: %s: %s", ds->source, lineno, full, strerror(e));
			goto out_free;
		}
		if (!S_ISREG(sb.st_mode)) {
			st = qcal_err_set(err, QCAL_EFORMAT, "%s:%zu: %s: not a regular file",
					  ds->source, lineno, full);
			goto out_free;
		}
		if (label > max_label) {
			max_label = (int)label;
			ds->max_label_line = lineno;
		}
	}
	if (b.n == 0) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: list file names no images", ds->source);
		goto out_free;
	}
	ds->num_classes = max_label + 1;
	st = builder_finish(&b, ds, err);
out_free:
	builder_free(&b);
	free(base);
	free(text);
	return st;
}

/* ----------------------------------------------------------------- open */

enum qcal_status dataset_open(struct dataset *ds, const char *path,
			      const struct dataset_options *opt,
			      struct qcal_err *err)
{
	enum dataset_layout layout = opt ? opt->layout : DATASET_AUTO;
	enum qcal_status st;
	struct stat sb;
	size_t len;

	memset(ds, 0, sizeof(*ds));
	if (!path || !*path)
		return qcal_err_set(err, QCAL_EINVAL, "image set: empty path");
	ds->source = strdup(path);
	if (!ds->source)
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
	len = strlen(ds->source);
	while (len > 1 && ds->source[len - 1] == '/')
		ds->source[--len] = '\0';
	if (stat(ds->source, &sb) != 0) {
		st = qcal_err_set(err, errno == ENOENT || errno == ENOTDIR ? QCAL_ENOENT : QCAL_EIO,
				  "%s: %s", path, strerror(errno));
		goto out_fail;
	}
	if (S_ISDIR(sb.st_mode)) {
		if (layout == DATASET_LIST) {
			st = qcal_err_set(err, QCAL_EINVAL, "%s: is a folder, not a list file", path);
			goto out_fail;
		}
		st = open_folder(ds, layout, err);
	} else if (S_ISREG(sb.st_mode)) {
		if (layout != DATASET_AUTO && layout != DATASET_LIST) {
			st = qcal_err_set(err, QCAL_EINVAL,
					  "%s: is a file; only a list file can be opened from a file",
					  path);
			goto out_fail;
		}
		st = open_list(ds, opt ? opt->root : NULL, err);
	} else {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: neither a folder nor a list file", path);
	}
	if (st == QCAL_OK)
		return QCAL_OK;
out_fail:
	dataset_free(ds);
	return st;
}

void dataset_free(struct dataset *ds)
{
	if (!ds)
		return;
	for (int i = 0; ds->class_names && i < ds->num_classes; i++)
		free(ds->class_names[i]);
	free(ds->class_names);
	free(ds->items);
	free(ds->pool);
	free(ds->source);
	memset(ds, 0, sizeof(*ds));
}

enum qcal_status dataset_check_classes(const struct dataset *ds, int num_classes,
				       struct qcal_err *err)
{
	if (ds->layout == DATASET_UNLABELLED || ds->num_classes <= num_classes)
		return QCAL_OK;
	if (ds->layout == DATASET_CLASS_FOLDERS)
		return qcal_err_set(err, QCAL_ERANGE,
				    "%s: %d class folders (%s .. %s) but the model has %d classes",
				    ds->source, ds->num_classes, ds->class_names[0],
				    ds->class_names[ds->num_classes - 1], num_classes);
	return qcal_err_set(err, QCAL_ERANGE,
			    "%s:%zu: label %d but the model has %d classes (0..%d)",
			    ds->source, ds->max_label_line, ds->num_classes - 1, num_classes,
			    num_classes - 1);
}

/* ------------------------------------------------------------ selection */

void dataset_limit(struct dataset *ds, size_t n)
{
	if (n > 0 && n < ds->count)
		ds->count = n;
}

void dataset_class_counts(const struct dataset *ds, size_t *counts)
{
	for (int c = 0; c < ds->num_classes; c++)
		counts[c] = 0;
	for (size_t i = 0; i < ds->count; i++)
		if (ds->items[i].label >= 0 && ds->items[i].label < ds->num_classes)
			counts[ds->items[i].label]++;
}

/* splitmix64's finaliser: a bijection that spreads every input bit. */
static uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

uint64_t dataset_stream_seed(uint64_t seed, uint64_t epoch, uint64_t index)
{
	/* Chained, not summed: (s, e, i) and (s, e + 1, i - 1) stay apart. */
	return mix64(mix64(mix64(seed) ^ epoch) ^ index);
}

enum qcal_status dataset_sample(struct dataset *ds, size_t n, uint64_t seed,
				struct qcal_err *err)
{
	enum qcal_status st = QCAL_OK;
	size_t groups = (size_t)(ds->num_classes > 0 ? ds->num_classes : 0) + 1;
	size_t *size = NULL, *quota = NULL, *start = NULL, *members = NULL, *fill = NULL;
	size_t *active = NULL;
	unsigned char *keep = NULL;
	struct qcal_rng rng;
	size_t remaining = n, kept = 0;

	if (n == 0 || n >= ds->count)
		return QCAL_OK;
	/* Group 0 holds unlabelled items, group c + 1 class c. */
	size = calloc(groups, sizeof(*size));
	quota = calloc(groups, sizeof(*quota));
	start = calloc(groups + 1, sizeof(*start));
	fill = calloc(groups, sizeof(*fill));
	active = calloc(groups, sizeof(*active));
	members = malloc(ds->count * sizeof(*members));
	keep = calloc(ds->count, 1);
	if (!size || !quota || !start || !fill || !active || !members || !keep) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", ds->source);
		goto out_free;
	}
	for (size_t i = 0; i < ds->count; i++)
		size[ds->items[i].label + 1]++;
	for (size_t g = 0; g < groups; g++)
		start[g + 1] = start[g] + size[g];
	for (size_t i = 0; i < ds->count; i++) {
		size_t g = (size_t)(ds->items[i].label + 1);
		members[start[g] + fill[g]++] = i;
	}
	qcal_rng_seed(&rng, dataset_stream_seed(seed, 0, 0x5a4d504c45ULL));

	/* Water-filling: equal shares among the groups that still have items;
	 * a remainder smaller than the group count goes to seeded groups. */
	while (remaining > 0) {
		size_t na = 0;
		for (size_t g = 0; g < groups; g++)
			if (quota[g] < size[g])
				active[na++] = g;
		if (na == 0)
			break;
		size_t share = remaining / na;
		if (share == 0) {
			/* Partial Fisher-Yates: the first `remaining` of a
			 * seeded shuffle of the active groups get one more. */
			for (size_t k = 0; k < remaining; k++) {
				size_t j = k + (size_t)qcal_rng_below(&rng, na - k);
				size_t t = active[k];
				active[k] = active[j];
				active[j] = t;
				quota[active[k]]++;
			}
			remaining = 0;
			break;
		}
		for (size_t k = 0; k < na; k++) {
			size_t g = active[k];
			size_t add = size[g] - quota[g] < share ? size[g] - quota[g] : share;
			quota[g] += add;
			remaining -= add;
		}
	}
	/* Within each group, a seeded choice of quota[g] members. */
	for (size_t g = 0; g < groups; g++) {
		size_t *m = members + start[g];
		for (size_t k = 0; k < quota[g]; k++) {
			size_t j = k + (size_t)qcal_rng_below(&rng, size[g] - k);
			size_t t = m[k];
			m[k] = m[j];
			m[j] = t;
			keep[m[k]] = 1;
		}
	}
	for (size_t i = 0; i < ds->count; i++)
		if (keep[i])
			ds->items[kept++] = ds->items[i];
	ds->count = kept;
out_free:
	free(size);
	free(quota);
	free(start);
	free(fill);
	free(active);
	free(members);
	free(keep);
	return st;
}

void dataset_epoch_order(size_t *order, size_t n, uint64_t seed, uint64_t epoch)
{
	struct qcal_rng rng;

	qcal_rng_seed(&rng, dataset_stream_seed(seed, epoch, UINT64_MAX));
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)qcal_rng_below(&rng, i);
		size_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}
