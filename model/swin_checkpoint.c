/*
 * HDF5 checkpoint reader and writer.
 *
 * HDF5's own error stack printing is switched off for every call here; each
 * failure is reported once, through struct qcal_err, naming the file and the
 * tensor.  Reading a dataset goes through H5T_NATIVE_FLOAT only after its
 * stored type has been checked to be a 4-byte float, so a float64 or integer
 * tensor is rejected, never silently converted.
 */
#include "model/swin_model.h"

#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/finite.h"
#include "core/h5.h"

static void format_shape(char *buf, size_t size, int ndim, const hsize_t *dims)
{
	size_t used = 0;

	used += (size_t)snprintf(buf + used, size - used, "(");
	for (int i = 0; i < ndim && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%llu",
					 i ? ", " : "", (unsigned long long)dims[i]);
	if (used < size)
		snprintf(buf + used, size - used, ")");
}

/* H5Ewalk2 callback: keep the innermost error's description (walked first),
 * e.g. "truncated file: eof = 100, sblock->base_addr = 0, stored_eof = 43160". */
static herr_t innermost_error(unsigned n, const H5E_error2_t *e, void *data)
{
	char *why = data;

	if (n == 0 && e->desc)
		snprintf(why, 256, "%s", e->desc);
	return 0;
}

static const char *type_name(hid_t type)
{
	H5T_class_t cls = H5Tget_class(type);
	size_t size = H5Tget_size(type);

	if (cls == H5T_FLOAT)
		return size == 2 ? "float16" : size == 4 ? "float32" : size == 8 ? "float64" : "float";
	if (cls == H5T_INTEGER)
		return size == 1 ? "int8" : size == 2 ? "int16" : size == 4 ? "int32" : "int64";
	if (cls == H5T_STRING)
		return "string";
	return "non-numeric";
}

/*
 * A NaN or Inf parameter makes every later number meaningless without any
 * error (an argmax over NaN logits is class 0; fake quant clamps NaN into
 * range), so the checkpoint is refused, naming the first bad element.
 */
static enum qcal_status check_finite(const char *path, const struct swin_param_spec *spec,
				     const float *x, struct qcal_err *err)
{
	size_t bad, first = qcal_first_non_finite(x, spec->numel, &bad);
	char at[96];
	int len = 0;

	if (!bad)
		return QCAL_OK;
	/* the flat index as [i0, i1, ...] in the tensor's own shape */
	size_t rest = first, stride = spec->numel;
	for (int d = 0; d < spec->ndim && len < (int)sizeof(at) - 24; d++) {
		stride /= (size_t)spec->shape[d];
		len += snprintf(at + len, sizeof(at) - (size_t)len, "%s%zu", d ? ", " : "",
				rest / stride);
		rest %= stride;
	}
	return qcal_err_set(err, QCAL_EFORMAT,
			    "%s: %s has %zu non-finite value%s (first: %s at [%s]); "
			    "the model cannot be used", path, spec->name, bad, bad > 1 ? "s" : "",
			    isnan(x[first]) ? "NaN" : "Inf", at);
}

static enum qcal_status read_tensor(hid_t file, const char *path,
				    const struct swin_param_spec *spec,
				    float *dst, struct qcal_err *err)
{
	hid_t ds, type, space;
	hsize_t dims[8];
	int ndim;
	enum qcal_status st = QCAL_OK;

	if (H5Lexists(file, spec->name, H5P_DEFAULT) <= 0) {
		char want[128];
		hsize_t wdims[4];
		for (int i = 0; i < spec->ndim; i++)
			wdims[i] = (hsize_t)spec->shape[i];
		format_shape(want, sizeof(want), spec->ndim, wdims);
		return qcal_err_set(err, QCAL_ENOENT,
				    "%s: missing tensor %s (expected shape %s from the config)",
				    path, spec->name, want);
	}
	ds = H5Dopen2(file, spec->name, H5P_DEFAULT);
	if (ds < 0)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "%s: %s is not a dataset", path, spec->name);
	type = H5Dget_type(ds);
	space = H5Dget_space(ds);
	if (type < 0 || space < 0) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: %s: unreadable header",
				  path, spec->name);
		goto out_close;
	}
	if (H5Tget_class(type) != H5T_FLOAT || H5Tget_size(type) != 4) {
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "%s: %s has dtype %s, expected float32", path,
				  spec->name, type_name(type));
		goto out_close;
	}
	ndim = H5Sget_simple_extent_ndims(space);
	if (ndim < 0 || ndim > 8) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: %s: bad dataspace", path,
				  spec->name);
		goto out_close;
	}
	H5Sget_simple_extent_dims(space, dims, NULL);
	int same = ndim == spec->ndim;
	for (int i = 0; same && i < ndim; i++)
		same = dims[i] == (hsize_t)spec->shape[i];
	if (!same) {
		char found[128], want[128];
		hsize_t wdims[4];
		for (int i = 0; i < spec->ndim; i++)
			wdims[i] = (hsize_t)spec->shape[i];
		format_shape(found, sizeof(found), ndim, dims);
		format_shape(want, sizeof(want), spec->ndim, wdims);
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "%s: %s has shape %s, expected %s from the config",
				  path, spec->name, found, want);
		goto out_close;
	}
	if (H5Dread(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, dst) < 0)
		st = qcal_err_set(err, QCAL_EIO,
				  "%s: cannot read %s (file truncated or corrupt?)",
				  path, spec->name);
	else
		st = check_finite(path, spec, dst, err);
out_close:
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	H5Dclose(ds);
	return st;
}

/* relative_position_index buffers are optional but must be Swin's index. */
static enum qcal_status check_rel_index(hid_t file, const char *path,
					const char *name, const int32_t *want,
					size_t n, struct qcal_err *err)
{
	hid_t ds = H5Dopen2(file, name, H5P_DEFAULT);
	hid_t type = -1, space = -1;
	int64_t *got = NULL;
	enum qcal_status st = QCAL_OK;
	hsize_t dims[4];

	if (ds < 0)
		return qcal_err_set(err, QCAL_EFORMAT, "%s: %s is not a dataset",
				    path, name);
	type = H5Dget_type(ds);
	space = H5Dget_space(ds);
	if (H5Tget_class(type) != H5T_INTEGER) {
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "%s: %s has dtype %s, expected an integer index",
				  path, name, type_name(type));
		goto out;
	}
	int ndim = H5Sget_simple_extent_ndims(space);
	hssize_t count = H5Sget_simple_extent_npoints(space);
	if (ndim < 1 || ndim > 4 || count != (hssize_t)n) {
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "%s: %s has %lld entries, expected %zu for the window size",
				  path, name, (long long)count, n);
		goto out;
	}
	H5Sget_simple_extent_dims(space, dims, NULL);
	got = malloc(n * sizeof(*got));
	if (!got) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
		goto out;
	}
	if (H5Dread(ds, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) < 0) {
		st = qcal_err_set(err, QCAL_EIO, "%s: cannot read %s", path, name);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i]) {
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "%s: %s[%zu] = %lld, expected %d (not Swin's relative position index)",
					  path, name, i, (long long)got[i], want[i]);
			break;
		}
out:
	free(got);
	if (space >= 0)
		H5Sclose(space);
	if (type >= 0)
		H5Tclose(type);
	H5Dclose(ds);
	return st;
}

struct extra_scan {
	const struct swin_param_table *table;
	const int32_t *rel_index;
	size_t rel_count;
	const char *path;
	struct qcal_err *err;
	enum qcal_status st;
};

static int ends_with(const char *s, const char *suffix)
{
	size_t ls = strlen(s), lx = strlen(suffix);
	return ls >= lx && strcmp(s + ls - lx, suffix) == 0;
}

static herr_t scan_link(hid_t group, const char *name, const H5L_info_t *info,
			void *data)
{
	struct extra_scan *scan = data;
	(void)info;

	if (swin_param_table_find(scan->table, name) >= 0)
		return 0;
	if (ends_with(name, ".attn.relative_position_index")) {
		char table_name[SWIN_TENSOR_NAME_MAX + 32];
		size_t stem = strlen(name) - strlen("relative_position_index");
		snprintf(table_name, sizeof(table_name), "%.*srelative_position_bias_table",
			 (int)stem, name);
		if (swin_param_table_find(scan->table, table_name) >= 0) {
			scan->st = check_rel_index(group, scan->path, name,
						   scan->rel_index, scan->rel_count,
						   scan->err);
			return scan->st == QCAL_OK ? 0 : 1;
		}
	}
	scan->st = qcal_err_set(scan->err, QCAL_EFORMAT,
				"%s: unexpected tensor %s (not part of this config's Swin model)",
				scan->path, name);
	return 1;
}

enum qcal_status swin_model_load(struct swin_model *m, const char *path,
				 struct qcal_err *err)
{
	struct swin_config cfg;
	enum qcal_status st;
	hid_t file;
	char *config_json;

	memset(m, 0, sizeof(*m));
	qcal_h5_quiet();
	FILE *probe = fopen(path, "rb");
	if (!probe)
		return qcal_err_set(err, QCAL_ENOENT, "%s: cannot open checkpoint",
				    path);
	fclose(probe);
	if (H5Fis_hdf5(path) <= 0)
		return qcal_err_set(err, QCAL_EFORMAT,
				    "%s: not an HDF5 file (expected a checkpoint written by tools/convert_checkpoint.py)",
				    path);
	file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (file < 0) {
		char why[256] = "";
		H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, innermost_error, why);
		return qcal_err_set(err, QCAL_EFORMAT,
				    "%s: cannot open as HDF5, truncated or corrupt file (HDF5: %s)",
				    path, why[0] ? why : "no details");
	}
	config_json = qcal_h5_read_string_attr(file, "config");
	if (!config_json) {
		st = qcal_err_set(err, QCAL_EFORMAT,
				  "%s: no string attribute \"config\" at the root", path);
		goto out_close_file;
	}
	st = swin_config_from_json(&cfg, config_json, err);
	free(config_json);
	if (st != QCAL_OK) {
		qcal_err_prefix(err, "%s: ", path);
		goto out_close_file;
	}
	st = swin_model_init(m, &cfg, err);
	swin_config_free(&cfg);
	if (st != QCAL_OK)
		goto out_close_file;
	/* Absent means "false"; anything but "true"/"false" is an error, since
	 * misreading a folded model as unfolded gives wrong logits silently. */
	if (H5Aexists(file, "input_folded") > 0) {
		char *folded = qcal_h5_read_string_attr(file, "input_folded");
		if (!folded || (strcmp(folded, "true") != 0 && strcmp(folded, "false") != 0))
			st = qcal_err_set(err, QCAL_EFORMAT,
					  "%s: attribute input_folded = %s%s%s, expected \"true\" or \"false\"",
					  path, folded ? "\"" : "", folded ? folded : "(not a string)",
					  folded ? "\"" : "");
		else
			m->input_folded = strcmp(folded, "true") == 0;
		free(folded);
	}
	for (int i = 0; i < m->table.count && st == QCAL_OK; i++)
		st = read_tensor(file, path, &m->table.specs[i],
				 m->params + m->table.specs[i].offset, err);
	if (st == QCAL_OK) {
		int n = m->cfg.window_size * m->cfg.window_size;
		struct extra_scan scan = {
			.table = &m->table, .rel_index = m->rel_index,
			.rel_count = (size_t)n * (size_t)n, .path = path, .err = err,
		};
		if (H5Literate(file, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, scan_link,
			       &scan) < 0 && scan.st == QCAL_OK)
			scan.st = qcal_err_set(err, QCAL_EFORMAT,
					       "%s: cannot list the root group", path);
		st = scan.st;
	}
	if (st != QCAL_OK)
		swin_model_free(m);
out_close_file:
	H5Fclose(file);
	return st;
}

static herr_t write_dataset(hid_t file, const char *name, hid_t file_type,
			    hid_t mem_type, int ndim, const int64_t *shape,
			    const void *data)
{
	hsize_t dims[4];
	hid_t space, ds;
	herr_t rc;

	for (int i = 0; i < ndim; i++)
		dims[i] = (hsize_t)shape[i];
	space = H5Screate_simple(ndim, dims, NULL);
	ds = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT,
			H5P_DEFAULT);
	rc = ds < 0 ? -1 : H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
	if (ds >= 0)
		H5Dclose(ds);
	H5Sclose(space);
	return rc;
}

enum qcal_status swin_model_save(const struct swin_model *m, const char *path,
				 struct qcal_err *err)
{
	char *config_json = swin_config_to_json(&m->cfg);
	int n = m->cfg.window_size * m->cfg.window_size;
	int64_t *index64 = malloc((size_t)n * (size_t)n * sizeof(*index64));
	enum qcal_status st = QCAL_OK;
	hid_t file = -1;
	herr_t rc = 0;

	if (!config_json || !index64) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
		goto out_free;
	}
	for (int i = 0; i < n * n; i++)
		index64[i] = m->rel_index[i];
	file = qcal_h5_create(path, err);
	if (file < 0) {
		st = QCAL_ENOMEM;
		goto out_free;
	}
	rc |= (herr_t)qcal_h5_write_string_attr(file, "config", config_json);
	rc |= (herr_t)qcal_h5_write_string_attr(file, "input_folded", m->input_folded ? "true" : "false");
	for (int i = 0; i < m->table.count && rc >= 0; i++) {
		const struct swin_param_spec *s = &m->table.specs[i];
		rc |= write_dataset(file, s->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
				    s->ndim, s->shape, m->params + s->offset);
		if (s->kind == SWIN_PARAM_REL_POS_TABLE && rc >= 0) {
			char iname[SWIN_TENSOR_NAME_MAX + 8];
			size_t stem = strlen(s->name) - strlen("relative_position_bias_table");
			snprintf(iname, sizeof(iname), "%.*srelative_position_index",
				 (int)stem, s->name);
			int64_t count = (int64_t)n * n;
			rc |= write_dataset(file, iname, H5T_STD_I64LE, H5T_NATIVE_INT64,
					    1, &count, index64);
		}
	}
	if (rc < 0) {
		qcal_h5_discard(file);
		st = qcal_err_set(err, QCAL_EIO, "%s: building the checkpoint failed (out of memory?)",
				  path);
		goto out_free;
	}
	st = qcal_h5_commit(file, path, err);
out_free:
	free(index64);
	free(config_json);
	return st;
}
