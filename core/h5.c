/* HDF5 helpers; see h5.h. */
#include "core/h5.h"

#include "core/atomic_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t qcal_h5_shape_numel(const struct qcal_h5_shape *shape)
{
	size_t n = 1;

	for (int i = 0; i < shape->ndim; i++)
		n *= (size_t)shape->dims[i];
	return n;
}

void qcal_h5_quiet(void)
{
	H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

hid_t qcal_h5_open_read(const char *path, struct qcal_err *err)
{
	FILE *probe;
	hid_t file;

	qcal_h5_quiet();
	probe = fopen(path, "rb");
	if (!probe) {
		qcal_err_set(err, QCAL_ENOENT, "%s: cannot open", path);
		return -1;
	}
	fclose(probe);
	if (H5Fis_hdf5(path) <= 0) {
		qcal_err_set(err, QCAL_EFORMAT, "%s: not an HDF5 file", path);
		return -1;
	}
	file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
	if (file < 0)
		qcal_err_set(err, QCAL_EFORMAT,
			     "%s: cannot open as HDF5 (truncated or corrupt file)", path);
	return file;
}

/* the in-memory image grows by this much at a time */
#define H5_MEMORY_INCREMENT ((size_t)8 << 20)

hid_t qcal_h5_create(const char *path, struct qcal_err *err)
{
	/* a unique name: HDF5 refuses two open files of the same name */
	char *name = qcal_atomic_tmp_path(path);
	hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), file = -1;

	qcal_h5_quiet();
	if (name && fapl >= 0 && H5Pset_fapl_core(fapl, H5_MEMORY_INCREMENT, 0) >= 0)
		file = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
	if (fapl >= 0)
		H5Pclose(fapl);
	free(name);
	if (file < 0)
		qcal_err_set(err, QCAL_ENOMEM, "%s: cannot start the HDF5 file in memory", path);
	return file;
}

enum qcal_status qcal_h5_commit(hid_t file, const char *path, struct qcal_err *err)
{
	ssize_t size = -1;
	void *image = NULL;
	enum qcal_status st;

	if (H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0)
		size = H5Fget_file_image(file, NULL, 0);
	if (size > 0)
		image = malloc((size_t)size);
	if (!image || H5Fget_file_image(file, image, (size_t)size) != size) {
		free(image);
		H5Fclose(file);
		return qcal_err_set(err, QCAL_ENOMEM, "%s: cannot serialise the HDF5 file "
				    "(%zd bytes; out of memory?)", path, size);
	}
	H5Fclose(file);
	st = qcal_write_file_atomic(path, image, (size_t)size, err);
	free(image);
	return st;
}

void qcal_h5_discard(hid_t file)
{
	if (file >= 0)
		H5Fclose(file);
}

static enum qcal_status read_any(hid_t file, const char *path, const char *name,
				 hid_t mem_type, size_t elem, void **data,
				 struct qcal_h5_shape *shape, struct qcal_err *err)
{
	hid_t ds, space, type;
	hsize_t dims[QCAL_H5_MAX_DIMS];
	struct qcal_h5_shape local;
	enum qcal_status st = QCAL_OK;
	void *buf = NULL;
	int ndim;

	*data = NULL;
	if (!shape)
		shape = &local;
	if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
		return qcal_err_set(err, QCAL_ENOENT, "%s: no dataset %s", path, name);
	ds = H5Dopen2(file, name, H5P_DEFAULT);
	if (ds < 0)
		return qcal_err_set(err, QCAL_EFORMAT, "%s: %s is not a dataset", path, name);
	type = H5Dget_type(ds);
	space = H5Dget_space(ds);
	H5T_class_t cls = H5Tget_class(type);
	if (cls != H5T_FLOAT && cls != H5T_INTEGER) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: %s is not numeric", path, name);
		goto out;
	}
	ndim = H5Sget_simple_extent_ndims(space);
	if (ndim < 0 || ndim > QCAL_H5_MAX_DIMS) {
		st = qcal_err_set(err, QCAL_EFORMAT, "%s: %s has an unsupported rank", path, name);
		goto out;
	}
	H5Sget_simple_extent_dims(space, dims, NULL);
	shape->ndim = ndim;
	for (int i = 0; i < ndim; i++)
		shape->dims[i] = (int64_t)dims[i];
	size_t n = qcal_h5_shape_numel(shape);
	buf = malloc(n ? n * elem : 1);
	if (!buf) {
		st = qcal_err_set(err, QCAL_ENOMEM, "%s: %s: out of memory", path, name);
		goto out;
	}
	if (n && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0) {
		st = qcal_err_set(err, QCAL_EIO, "%s: cannot read %s (truncated?)", path, name);
		free(buf);
		buf = NULL;
		goto out;
	}
	*data = buf;
out:
	H5Sclose(space);
	H5Tclose(type);
	H5Dclose(ds);
	return st;
}

enum qcal_status qcal_h5_read_float(hid_t file, const char *path,
				    const char *name, float **data,
				    struct qcal_h5_shape *shape,
				    struct qcal_err *err)
{
	return read_any(file, path, name, H5T_NATIVE_FLOAT, sizeof(float),
			(void **)data, shape, err);
}

enum qcal_status qcal_h5_read_int64(hid_t file, const char *path,
				    const char *name, int64_t **data,
				    struct qcal_h5_shape *shape,
				    struct qcal_err *err)
{
	return read_any(file, path, name, H5T_NATIVE_INT64, sizeof(int64_t),
			(void **)data, shape, err);
}

static int write_any(hid_t file, const char *name, hid_t file_type,
		     hid_t mem_type, const void *data, int ndim,
		     const int64_t *dims)
{
	hsize_t hd[QCAL_H5_MAX_DIMS];
	hid_t space, ds, lcpl;
	herr_t rc;

	for (int i = 0; i < ndim; i++)
		hd[i] = (hsize_t)dims[i];
	space = ndim ? H5Screate_simple(ndim, hd, NULL) : H5Screate(H5S_SCALAR);
	lcpl = H5Pcreate(H5P_LINK_CREATE);
	H5Pset_create_intermediate_group(lcpl, 1);
	ds = H5Dcreate2(file, name, file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
	rc = ds < 0 ? -1 : H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
	if (ds >= 0)
		H5Dclose(ds);
	H5Pclose(lcpl);
	H5Sclose(space);
	return rc < 0 ? -1 : 0;
}

int qcal_h5_write_float(hid_t file, const char *name, const float *data,
			int ndim, const int64_t *dims)
{
	return write_any(file, name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data, ndim, dims);
}

int qcal_h5_write_int64(hid_t file, const char *name, const int64_t *data,
			int ndim, const int64_t *dims)
{
	return write_any(file, name, H5T_STD_I64LE, H5T_NATIVE_INT64, data, ndim, dims);
}

int qcal_h5_write_int32(hid_t file, const char *name, const int32_t *data,
			int ndim, const int64_t *dims)
{
	return write_any(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, data, ndim, dims);
}

int qcal_h5_write_int8(hid_t file, const char *name, const int8_t *data,
		       int ndim, const int64_t *dims)
{
	return write_any(file, name, H5T_STD_I8LE, H5T_NATIVE_INT8, data, ndim, dims);
}

int qcal_h5_write_int16(hid_t file, const char *name, const int16_t *data,
			int ndim, const int64_t *dims)
{
	return write_any(file, name, H5T_STD_I16LE, H5T_NATIVE_INT16, data, ndim, dims);
}

int qcal_h5_write_string_attr(hid_t obj, const char *name, const char *value)
{
	hid_t type = H5Tcopy(H5T_C_S1), space = H5Screate(H5S_SCALAR), attr;
	herr_t rc;

	H5Tset_size(type, H5T_VARIABLE);
	H5Tset_cset(type, H5T_CSET_UTF8);
	if (H5Aexists(obj, name) > 0)
		H5Adelete(obj, name);
	attr = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
	rc = attr < 0 ? -1 : H5Awrite(attr, type, &value);
	if (attr >= 0)
		H5Aclose(attr);
	H5Sclose(space);
	H5Tclose(type);
	return rc < 0 ? -1 : 0;
}

char *qcal_h5_read_string_attr(hid_t obj, const char *name)
{
	hid_t attr, type, mem;
	char *out = NULL;

	if (H5Aexists(obj, name) <= 0)
		return NULL;
	attr = H5Aopen(obj, name, H5P_DEFAULT);
	if (attr < 0)
		return NULL;
	type = H5Aget_type(attr);
	if (type < 0 || H5Tget_class(type) != H5T_STRING)
		goto out_close_attr;
	if (H5Tis_variable_str(type) > 0) {
		char *vstr = NULL;
		mem = H5Tcopy(H5T_C_S1);
		H5Tset_size(mem, H5T_VARIABLE);
		H5Tset_cset(mem, H5Tget_cset(type));
		if (H5Aread(attr, mem, &vstr) >= 0 && vstr) {
			out = strdup(vstr);
			H5free_memory(vstr);
		}
		H5Tclose(mem);
	} else {
		size_t size = H5Tget_size(type);
		out = calloc(size + 1, 1);
		mem = H5Tcopy(H5T_C_S1);
		H5Tset_size(mem, size);
		if (out && H5Aread(attr, mem, out) < 0) {
			free(out);
			out = NULL;
		}
		H5Tclose(mem);
	}
out_close_attr:
	if (type >= 0)
		H5Tclose(type);
	H5Aclose(attr);
	return out;
}
