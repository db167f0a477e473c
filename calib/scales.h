/*
 * Scale files: the result of calibration (and of QAT), one record per
 * quantization point, in the point table's order.
 *
 * JSON (the primary, versioned format; docs/SCALE_FORMAT.md describes it):
 * every float is written with 17 significant digits, so a float32 scale read
 * back is bit-identical.  Loading validates the file against the model's
 * point table: known dtypes, finite positive scales, zero points inside the
 * dtype's range, every point present exactly once, shapes equal.
 * Also exported: HDF5 (scales plus the integer weights) and a TensorRT
 * calibration cache (text, big-endian float32 hex scale per activation).
 */
#ifndef QCAL_CALIB_SCALES_H
#define QCAL_CALIB_SCALES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/status.h"
#include "model/qpoint.h"
#include "model/swin_model.h"

#define SCALE_FORMAT_NAME "qcal-scales"
#define SCALE_FORMAT_VERSION 1

struct scale_point {
	bool quantized;          /* false: the point stays float */
	enum qcal_dtype dtype;
	int64_t qmin, qmax;
	bool symmetric;
	bool fixed;              /* scale fixed by the config (e.g. 1/128 input) */
	bool learnable;          /* QAT may learn it */
	int channels;            /* 1 = per tensor, else per channel along axis 0 */
	float *scales;           /* [channels] owned */
	int32_t *zero_points;    /* [channels] owned */
	char observer[32];
	/* statistics from calibration (NAN / 0 when unknown) */
	double observed_min, observed_max; /* finite values seen */
	double clip_min, clip_max;         /* range the scale represents */
	uint64_t count, nan_count, inf_count;
};

struct scale_table {
	const struct qp_table *table;  /* borrowed: names, kinds, shapes */
	struct scale_point *points;    /* [table->count] owned */
	/* provenance */
	char *model_name, *model_file;
	bool input_folded;
	char *config_name, *config_file;
	char *data;                    /* calibration data set */
	long images;
	uint64_t seed;
	char *note;                    /* free text, e.g. "qat epoch 1" */
};

/* Empty (all points float) table for a point table. */
enum qcal_status scale_table_init(struct scale_table *st,
				  const struct qp_table *table,
				  struct qcal_err *err);
void scale_table_free(struct scale_table *st);

/* Set a point's quantization; allocates channel arrays. */
enum qcal_status scale_point_set(struct scale_point *p, enum qcal_dtype dtype,
				 bool symmetric, int channels,
				 const float *scales, const int32_t *zero_points,
				 struct qcal_err *err);

/* Check one point's values (finite positive scales, zero points in range). */
enum qcal_status scale_point_validate(const struct scale_point *p,
				      const char *name, struct qcal_err *err);

/* JSON, written atomically. */
enum qcal_status scale_table_write_json(const struct scale_table *st,
					const char *path, struct qcal_err *err);
/*
 * Read and validate against table (the model's point table).  st is
 * initialised by this call.  model_cfg, if given, is checked against the
 * file's model record (image size, classes, ...).
 */
enum qcal_status scale_table_read_json(struct scale_table *st,
				       const struct qp_table *table,
				       const char *path, struct qcal_err *err);

/* HDF5: /points/<name>/{scale, zero_point} (+ attributes) and, for weights,
 * the quantized integers qweight; written atomically. */
enum qcal_status scale_table_write_hdf5(const struct scale_table *st,
					const struct swin_model *model,
					const char *path, struct qcal_err *err);

/* TensorRT calibration cache: "TRT-<version>-EntropyCalibration2" then
 * "<name>: <hex of the big-endian float32 scale>" per quantized activation. */
enum qcal_status scale_table_write_tensorrt(const struct scale_table *st,
					    const char *path, int trt_version,
					    struct qcal_err *err);

/*
 * Views for the forward pass: out[table->count] point into st (no copies).
 * Points that are not quantized get dtype FLOAT.
 */
void scale_table_qparams(const struct scale_table *st, struct qp_qparams *out);

/*
 * Fake-quantize the weights of model in place with the weight points of st
 * (per output channel).  model must be a copy the caller owns.
 */
void scale_table_fakequant_weights(const struct scale_table *st,
				   struct swin_model *model);

/* Number of points a table lists as quantized. */
int scale_table_count_quantized(const struct scale_table *st);

#endif
