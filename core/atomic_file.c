/*
 * Atomic output files (see atomic_file.h).  The temporary name carries the pid
 * and a per-call counter passed through the address of a stack object, so
 * concurrent writers in one process never collide without a global counter.
 */
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *qcal_atomic_tmp_path(const char *path)
{
	size_t len = strlen(path) + 64;
	char *tmp = malloc(len);
	int marker;

	if (!tmp)
		return NULL;
	snprintf(tmp, len, "%s.tmp.%ld.%lx", path, (long)getpid(),
		 (unsigned long)((uintptr_t)&marker >> 4) & 0xffffffUL);
	return tmp;
}

static enum qcal_status fsync_path(const char *path, struct qcal_err *err)
{
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return qcal_err_set(err, QCAL_EIO, "%s: cannot reopen for fsync: %s",
				    path, strerror(errno));
	if (fsync(fd) != 0) {
		int e = errno;
		close(fd);
		return qcal_err_set(err, QCAL_EIO, "%s: fsync failed: %s", path,
				    strerror(e));
	}
	close(fd);
	return QCAL_OK;
}

enum qcal_status qcal_atomic_rename(const char *tmp_path, const char *path,
				    struct qcal_err *err)
{
	enum qcal_status st = fsync_path(tmp_path, err);

	if (st != QCAL_OK) {
		unlink(tmp_path);
		return st;
	}
	if (rename(tmp_path, path) != 0) {
		int e = errno;
		unlink(tmp_path);
		return qcal_err_set(err, QCAL_EIO, "%s: cannot rename into place: %s",
				    path, strerror(e));
	}
	return QCAL_OK;
}

enum qcal_status qcal_afile_open(struct qcal_afile *af, const char *path,
				 struct qcal_err *err)
{
	memset(af, 0, sizeof(*af));
	af->final_path = strdup(path);
	af->tmp_path = qcal_atomic_tmp_path(path);
	if (!af->final_path || !af->tmp_path) {
		qcal_afile_abort(af);
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
	}
	af->fp = fopen(af->tmp_path, "wb");
	if (!af->fp) {
		int e = errno;
		free(af->final_path);
		free(af->tmp_path);
		memset(af, 0, sizeof(*af));
		return qcal_err_set(err, QCAL_EIO, "%s: cannot create: %s", path,
				    strerror(e));
	}
	return QCAL_OK;
}

static void afile_release(struct qcal_afile *af)
{
	free(af->final_path);
	free(af->tmp_path);
	memset(af, 0, sizeof(*af));
}

void qcal_afile_abort(struct qcal_afile *af)
{
	if (!af)
		return;
	if (af->fp)
		fclose(af->fp);
	if (af->tmp_path)
		unlink(af->tmp_path);
	afile_release(af);
}

enum qcal_status qcal_afile_commit(struct qcal_afile *af, struct qcal_err *err)
{
	enum qcal_status st = QCAL_OK;
	int failed = ferror(af->fp) || fflush(af->fp) != 0;
	int e = errno;

	if (!failed && fsync(fileno(af->fp)) != 0) {
		failed = 1;
		e = errno;
	}
	if (fclose(af->fp) != 0 && !failed) {
		failed = 1;
		e = errno;
	}
	af->fp = NULL;
	if (failed) {
		st = qcal_err_set(err, QCAL_EIO, "%s: write failed: %s",
				  af->final_path, strerror(e));
		unlink(af->tmp_path);
	} else if (rename(af->tmp_path, af->final_path) != 0) {
		e = errno;
		st = qcal_err_set(err, QCAL_EIO, "%s: cannot rename into place: %s",
				  af->final_path, strerror(e));
		unlink(af->tmp_path);
	}
	afile_release(af);
	return st;
}

enum qcal_status qcal_write_file_atomic(const char *path, const void *data,
				       size_t size, struct qcal_err *err)
{
	struct qcal_afile af;
	enum qcal_status st = qcal_afile_open(&af, path, err);

	if (st != QCAL_OK)
		return st;
	if (size && fwrite(data, 1, size, af.fp) != size) {
		int e = errno;
		qcal_afile_abort(&af);
		return qcal_err_set(err, QCAL_EIO, "%s: write failed: %s", path,
				    strerror(e));
	}
	return qcal_afile_commit(&af, err);
}

enum qcal_status qcal_read_file(const char *path, char **data, size_t *size,
				struct qcal_err *err)
{
	FILE *fp = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0;

	*data = NULL;
	if (size)
		*size = 0;
	if (!fp)
		return qcal_err_set(err, errno == ENOENT ? QCAL_ENOENT : QCAL_EIO,
				    "%s: cannot open: %s", path, strerror(errno));
	for (;;) {
		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nbuf = realloc(buf, ncap + 1);
			if (!nbuf) {
				free(buf);
				fclose(fp);
				return qcal_err_set(err, QCAL_ENOMEM,
						    "%s: out of memory", path);
			}
			buf = nbuf;
			cap = ncap;
		}
		size_t got = fread(buf + len, 1, cap - len, fp);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(fp)) {
		int e = errno;
		free(buf);
		fclose(fp);
		return qcal_err_set(err, QCAL_EIO, "%s: read failed: %s", path,
				    strerror(e));
	}
	fclose(fp);
	buf[len] = '\0';
	*data = buf;
	if (size)
		*size = len;
	return QCAL_OK;
}
