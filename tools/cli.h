/*
 * Shared pieces of the qcal command line: exit codes, error printing, number
 * parsing and the progress bar.  Only tools/ prints for people; the library
 * modules report through struct qcal_err and progress callbacks.
 */
#ifndef QCAL_TOOLS_CLI_H
#define QCAL_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/progress.h"
#include "core/status.h"

/* Exit codes scripts can rely on (documented in README and --help). */
enum {
	QCAL_EXIT_OK = 0,
	QCAL_EXIT_FAILURE = 1,   /* bad input, I/O error, failed run */
	QCAL_EXIT_USAGE = 2,     /* bad command line */
	QCAL_EXIT_GATE = 3,      /* a regression gate tripped (report --baseline) */
	QCAL_EXIT_INTERRUPTED = 130,
};

/* "qcal <cmd>: error: <msg>" on stderr; returns QCAL_EXIT_FAILURE. */
int cli_fail(const char *cmd, const struct qcal_err *err);
int cli_failf(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "qcal <cmd>: <msg>\nTry 'qcal <cmd> --help'." on stderr; returns QCAL_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Before the work, not after it: path's folder must exist and be writable
 * and path must not be a folder.  0 when it can be written; otherwise the
 * error is printed and QCAL_EXIT_FAILURE returned.  NULL path: 0.
 */
int cli_check_output(const char *cmd, const char *path);

/* Strict number parsing: whole string, in range; false on any junk. */
bool cli_parse_int(const char *s, long min, long max, long *out);
bool cli_parse_double(const char *s, double *out);
/*
 * One of a NULL-terminated list of words: *out = its index.  Lets an option
 * map onto an enum whose values follow the list's order.
 */
bool cli_parse_choice(const char *s, const char *const *choices, int *out);
/* Comma-separated positive ints ("1,8"); returns the count or -1. */
int cli_parse_int_list(const char *s, int *out, int max);

/*
 * Progress on stderr: a redrawn bar with rate and ETA on a terminal, or one
 * plain line every `interval` seconds otherwise (logs stay readable).
 * quiet suppresses everything.
 */
struct cli_progress {
	const char *label;
	const char *unit;      /* "img", "step" */
	bool tty, quiet;
	double start, last_draw, interval;
	size_t last_done;
	int drawn;
};

void cli_progress_init(struct cli_progress *p, const char *label,
		       const char *unit, bool quiet);
/* A qcal_progress_fn: user is a struct cli_progress. Never asks to stop,
 * except after SIGINT/SIGTERM (see cli_install_interrupt). */
int cli_progress_update(void *user, size_t done, size_t total, const char *status);
void cli_progress_finish(struct cli_progress *p, size_t done, const char *status);
struct qcal_progress cli_progress_callback(struct cli_progress *p);

/* SIGINT/SIGTERM set a flag that progress callbacks turn into a stop request,
 * so long runs end cleanly (temporary files removed, nothing half-written). */
void cli_install_interrupt(void);
bool cli_interrupted(void);

#endif
