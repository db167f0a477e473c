/*
 * qcal: calibrate, fake-quantize and fine-tune Swin Transformers for integer
 * deployment.  This file only dispatches to the subcommands (tools/cmd_*.c).
 */
#include <cblas.h>
#include <hdf5.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/cli.h"
#include "tools/commands.h"

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "infer", cmd_infer, "run the float model on an HDF5 input tensor, write logits" },
	{ "bench", cmd_bench, "time the float forward (ms/image, GFLOP/s, peak RSS)" },
	{ "points", cmd_points, "list the quantization points of a model" },
	{ "eval", cmd_eval, "accuracy on images; with --scales, fake-quant vs float fidelity" },
	{ "calibrate", cmd_calibrate, "observe every quantization point, write a scale file" },
	{ "qat", cmd_qat, "fake-quant training: learned scales (LSQ), distillation, resume" },
	{ "report", cmd_report, "per-point error, sensitivity, HTML/MD/JSON report, CI gate" },
};

#define NUM_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out)
{
	fprintf(out,
		"usage: qcal <command> [options]\n"
		"\n"
		"Quantization calibration toolkit for Swin Transformers.\n"
		"\n"
		"commands:\n");
	for (size_t i = 0; i < NUM_COMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out,
		"\n"
		"Run 'qcal <command> --help' for a command's options.\n"
		"\n"
		"exit codes: 0 success, 1 failure (bad input, I/O), 2 usage error,\n"
		"            3 regression gate tripped, 130 interrupted\n");
}

/*
 * libgomp's default barrier spins for ~300,000 iterations before sleeping.
 * When another busy process shares the cores, a spinning thread burns the
 * time slice its partner needs, and a qcal job ran 30x slower beside another
 * one (docs/BENCHMARKS.md).  A short spin costs nothing measurable alone.
 * libgomp reads its environment when it is loaded, before main, so the
 * setting takes effect by running this program again with it.  The user's
 * own OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins.
 */
static void bound_openmp_spinning(char **argv)
{
	const char *preload = getenv("LD_PRELOAD");

	if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
		return;
	/* under valgrind /proc/self/exe is valgrind's tool, not qcal */
	if (preload && strstr(preload, "vgpreload"))
		return;
	if (setenv("GOMP_SPINCOUNT", "10000", 1) != 0)
		return;
	execv("/proc/self/exe", argv);
	/* not re-executed (no /proc?): carry on with the default spinning */
}

static const char *env_or_unset(const char *name)
{
	const char *v = getenv(name);

	return v ? v : "unset";
}

/* What a bug report needs: the libraries as loaded, and the OpenMP waiting
 * policy in force (GOMP_SPINCOUNT=10000 when qcal bounded it, above). */
static void print_version(void)
{
	unsigned major, minor, release;

	printf("qcal %s\n", QCAL_VERSION);
	printf("openblas: %s (core: %s)\n", openblas_get_config(), openblas_get_corename());
	if (H5get_libversion(&major, &minor, &release) >= 0)
		printf("hdf5: %u.%u.%u\n", major, minor, release);
	printf("openmp: OMP_WAIT_POLICY=%s GOMP_SPINCOUNT=%s\n",
	       env_or_unset("OMP_WAIT_POLICY"), env_or_unset("GOMP_SPINCOUNT"));
}

int main(int argc, char **argv)
{
	bound_openmp_spinning(argv);
	/* Over a file-size limit (ulimit -f) a write then fails with EFBIG, and
	 * the atomic writers report it and remove their temporary file as they
	 * do for a full disk, instead of the signal killing qcal midway. */
	signal(SIGXFSZ, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return QCAL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return QCAL_EXIT_OK;
	}
	if (strcmp(argv[1], "--version") == 0) {
		print_version();
		return QCAL_EXIT_OK;
	}
	for (size_t i = 0; i < NUM_COMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0) {
			cli_install_interrupt();
			return commands[i].run(argc - 1, argv + 1);
		}
	fprintf(stderr, "qcal: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return QCAL_EXIT_USAGE;
}
