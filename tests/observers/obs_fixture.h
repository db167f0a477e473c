/*
 * Shared by the observer tests: the fixture file that
 * tests/observers/make_fixtures.py writes (torch 1.13's results on seeded
 * batches), its cases and configs, and small helpers that fail the
 * running cmocka test on any error.
 */
#ifndef QCAL_TESTS_OBSERVERS_OBS_FIXTURE_H
#define QCAL_TESTS_OBSERVERS_OBS_FIXTURE_H

#include <hdf5.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/dtype.h"
#include "observers/observer.h"

#define OBS_MAX_BATCHES 8
#define OBS_NUM_CASES 7
#define OBS_NUM_CONFIGS 10

struct obs_case {
	const char *name;
	int batches;
	float *x[OBS_MAX_BATCHES];
	size_t n[OBS_MAX_BATCHES];
	float *all;                  /* the batches concatenated */
	size_t total;
};

/* make_fixtures.py's CONFIGS, in its order. */
struct obs_config {
	const char *name;
	enum qcal_dtype dtype;
	bool symmetric;
};

extern const char *const obs_case_names[OBS_NUM_CASES];
extern const struct obs_config obs_configs[OBS_NUM_CONFIGS];

/* Open tests/observers/fixtures/observers.h5 and check its config list. */
hid_t obs_fixture_open(void);
void obs_case_load(hid_t f, const char *name, struct obs_case *c);
void obs_case_free(struct obs_case *c);
/* A float64 table from the fixture as float32, or a double copy. */
float *obs_read_float(hid_t f, const char *path, size_t *n);
double *obs_read_double(hid_t f, const char *path, size_t *n);
int64_t *obs_read_int64(hid_t f, const char *path, size_t *n);

struct observer *obs_make(const struct observer_options *opt);
struct observer *obs_make_kind(enum observer_kind kind, enum qcal_dtype dtype,
			       bool symmetric);
void obs_feed(struct observer *o, const struct obs_case *c);
/* compute_qparams that must succeed */
void obs_qparams(const struct observer *o, struct observer_qparams *q);

/* Bitwise equality of floats (tells -0 from 0, equal NaNs apart). */
bool obs_same_float(float a, float b);

#endif
