/*
 * Fixture access shared by the datasets tests: paths under
 * tests/datasets/fixtures (written by make_fixtures.py with Pillow and
 * torchvision) and the expected arrays in fixtures/expected.h5.
 */
#ifndef QCAL_TESTS_DATASETS_DS_FIXTURE_H
#define QCAL_TESTS_DATASETS_DS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

/* "$QCAL_SOURCE/tests/datasets/fixtures/<rel>" into buf. */
const char *ds_fixture_path(char *buf, size_t size, const char *rel);

/* Dataset `name` of expected.h5 as float (malloc'ed); shape dims into dims
 * (up to 4, unused ones 0).  Fails the running test if absent. */
float *ds_expected(const char *name, int64_t dims[4]);

/* Largest |a[i] - b[i]| over n bytes; *worst gets its index (may be NULL). */
int ds_max_diff_u8(const uint8_t *a, const uint8_t *b, size_t n, size_t *worst);

/* Number of float32 values whose bit patterns differ. */
size_t ds_count_bit_diffs(const float *a, const float *b, size_t n);

#endif
