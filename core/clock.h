/* Monotonic wall clock and peak resident memory, for benchmarks and rates. */
#ifndef QCAL_CORE_CLOCK_H
#define QCAL_CORE_CLOCK_H

#include <stddef.h>

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double qcal_now(void);

/* Peak resident set size of this process in bytes (getrusage). */
size_t qcal_peak_rss_bytes(void);

#endif
