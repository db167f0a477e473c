/*
 * CLI helpers.  The interrupt flag is the one piece of process-wide state in
 * qcal, and it lives here in tools/, where a signal handler has to put it.
 */
#include "tools/cli.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

void cli_install_interrupt(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

bool cli_interrupted(void)
{
	return interrupted != 0;
}

int cli_fail(const char *cmd, const struct qcal_err *err)
{
	fprintf(stderr, "qcal %s: error: %s\n", cmd,
		err && err->msg[0] ? err->msg : qcal_status_name(err ? err->status : QCAL_EINVAL));
	return err && err->status == QCAL_ECANCEL ? QCAL_EXIT_INTERRUPTED : QCAL_EXIT_FAILURE;
}

int cli_failf(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qcal %s: error: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return QCAL_EXIT_FAILURE;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qcal %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'qcal %s --help'.\n", cmd);
	return QCAL_EXIT_USAGE;
}

int cli_check_output(const char *cmd, const char *path)
{
	struct stat sb;
	const char *slash;
	char dir[4096];

	if (!path)
		return 0;
	if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
		return cli_failf(cmd, "%s: is a folder, expected a file name", path);
	slash = strrchr(path, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else
		snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (stat(dir, &sb) != 0)
		return cli_failf(cmd, "%s: cannot write there: %s: %s", path, dir, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return cli_failf(cmd, "%s: cannot write there: %s is not a folder", path, dir);
	if (access(dir, W_OK) != 0)
		return cli_failf(cmd, "%s: cannot write there: %s: %s", path, dir, strerror(errno));
	return 0;
}

bool cli_parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v))
		return false;
	*out = v;
	return true;
}

bool cli_parse_choice(const char *s, const char *const *choices, int *out)
{
	for (int i = 0; s && choices[i]; i++)
		if (strcmp(s, choices[i]) == 0) {
			*out = i;
			return true;
		}
	return false;
}

int cli_parse_int_list(const char *s, int *out, int max)
{
	int n = 0;
	const char *p = s;

	while (*p) {
		char item[32];
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		long v;
		if (len == 0 || len >= sizeof(item) || n == max)
			return -1;
		memcpy(item, p, len);
		item[len] = '\0';
		if (!cli_parse_int(item, 1, 1L << 30, &v))
			return -1;
		out[n++] = (int)v;
		p += len + (comma ? 1 : 0);
		if (comma && !*p)
			return -1;
	}
	return n ? n : -1;
}

void cli_progress_init(struct cli_progress *p, const char *label,
		       const char *unit, bool quiet)
{
	memset(p, 0, sizeof(*p));
	p->label = label;
	p->unit = unit;
	p->quiet = quiet;
	p->tty = isatty(STDERR_FILENO);
	p->start = p->last_draw = qcal_now();
	p->interval = p->tty ? 0.1 : 10.0;
}

static void format_eta(char *buf, size_t size, double seconds)
{
	if (!isfinite(seconds) || seconds < 0) {
		snprintf(buf, size, "--:--");
		return;
	}
	long s = (long)(seconds + 0.5);
	if (s >= 3600)
		snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
	else
		snprintf(buf, size, "%02ld:%02ld", s / 60, s % 60);
}

static void draw(struct cli_progress *p, size_t done, size_t total,
		 const char *status, bool final)
{
	double now = qcal_now(), elapsed = now - p->start;
	double rate = elapsed > 0 ? (double)done / elapsed : 0;
	char eta[32];

	format_eta(eta, sizeof(eta), rate > 0 ? (double)(total - done) / rate : NAN);
	if (p->tty) {
		int width = 28, fill = total ? (int)((double)done / total * width) : 0;
		char bar[64];
		if (fill > width)
			fill = width;
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '.', (size_t)(width - fill));
		bar[width] = '\0';
		fprintf(stderr, "\r\033[K%s [%s] %zu/%zu %s  %.1f %s/s  ETA %s%s%s",
			p->label, bar, done, total, p->unit, rate, p->unit,
			final ? "00:00" : eta, status ? "  " : "", status ? status : "");
		if (final)
			fputc('\n', stderr);
	} else {
		fprintf(stderr, "%s: %zu/%zu %s (%.0f%%), %.1f %s/s, ETA %s%s%s\n",
			p->label, done, total, p->unit,
			total ? 100.0 * (double)done / total : 100.0, rate, p->unit,
			final ? "00:00" : eta, status ? ", " : "", status ? status : "");
	}
	fflush(stderr);
	p->last_draw = now;
	p->last_done = done;
	p->drawn = 1;
}

int cli_progress_update(void *user, size_t done, size_t total, const char *status)
{
	struct cli_progress *p = user;

	if (!p->quiet && qcal_now() - p->last_draw >= p->interval && done < total)
		draw(p, done, total, status, false);
	return cli_interrupted();
}

void cli_progress_finish(struct cli_progress *p, size_t done, const char *status)
{
	if (!p->quiet && (p->tty || p->drawn))
		draw(p, done, done, status, true);
}

struct qcal_progress cli_progress_callback(struct cli_progress *p)
{
	struct qcal_progress cb = { cli_progress_update, p };
	return cb;
}
