/*
 * qcal bench: time the float forward pass.  Reports the median over
 * repeated runs of ms/image, GFLOP/s from the counted FLOPs of the
 * architecture (swin_forward_flops) and the process's peak RSS.  The output
 * line mirrors shared/bench/torch_anchor.py so tools/bench can put the two
 * side by side.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/calibrate.h"
#include "calib/qconfig.h"
#include "core/clock.h"
#include "core/rng.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void bench_help(void)
{
	printf("usage: qcal bench [--model M.h5 | --arch swin-t] [options]\n"
	       "\n"
	       "Time the float forward pass, or a calibration pass, on random input.\n"
	       "\n"
	       "      --mode M        forward (default) or calibrate: the float forward and a\n"
	       "                      calibration pass (every point observed) timed in the same run\n"
	       "      --observer K    calibrate: activation observer (default mse; minmax,\n"
	       "                      moving_average, percentile, entropy, mse)\n"
	       "      --config C      calibrate: quantization config (default int8-default)\n"
	       "  -m, --model FILE    checkpoint to time (default: --arch swin-t)\n"
	       "      --arch NAME     built-in architecture with random weights: swin-t\n"
	       "  -b, --batch LIST    batch sizes, comma-separated (default 1,8)\n"
	       "  -n, --iters N       timed runs per batch size (default 10; median reported)\n"
	       "      --warmup N      untimed runs first (default 2)\n"
	       "  -t, --threads N     worker threads (default: all cores)\n"
	       "      --kernels K     openblas (default) or naive (the reference loops)\n"
	       "  -h, --help          this help\n"
	       "\n"
	       "output, one line per batch size:\n"
	       "  qcal <model> forward batch=8 threads=2 ms_per_image=... gflops=... peak_rss_mb=...\n"
	       "  qcal <model> calibrate observer=mse batch=8 ms_per_image=... forward_ms_per_image=...\n"
	       "      ratio=... peak_rss_mb=...\n");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *t, long n)
{
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* A source that yields one fixed batch, then ends. */
struct one_batch {
	const float *images;
	int *labels;
	int count, given;
};

static enum qcal_status one_batch_next(void *user, struct eval_batch *b, struct qcal_err *err)
{
	struct one_batch *o = user;
	(void)err;
	b->images = o->images;
	b->labels = o->labels;
	b->count = o->given ? 0 : o->count;
	o->given = 1;
	return QCAL_OK;
}

static int bench_calibrate(const struct swin_model *model, const char *config_arg,
			   const char *observer, int B, int threads, long iters,
			   long warmup, const float *input)
{
	char path[1024];
	struct qconfig cfg;
	struct qcal_err err = { 0 };
	struct calib_session *s = NULL;
	struct swin_plan plan;
	double *tf = malloc((size_t)iters * sizeof(double));
	double *tc = malloc((size_t)iters * sizeof(double));
	int *labels = calloc((size_t)B, sizeof(int));
	int rc = QCAL_EXIT_FAILURE;

	if (!tf || !tc || !labels) {
		free(tf);
		free(tc);
		free(labels);
		return cli_failf("bench", "out of memory");
	}
	if (qconfig_locate(config_arg, QCAL_CONFIG_DIR, path, sizeof(path), &err) != QCAL_OK ||
	    qconfig_load(&cfg, path, &err) != QCAL_OK) {
		free(tf);
		free(tc);
		free(labels);
		return cli_fail("bench", &err);
	}
	struct calib_options opt = { .batch = B, .threads = threads, .observer = observer };
	if (calib_session_create(&s, model, &cfg, &opt, &err) != QCAL_OK ||
	    swin_plan_init(&plan, &model->cfg, B, 0, threads, NULL, &err) != QCAL_OK) {
		rc = cli_fail("bench", &err);
		goto out;
	}
	const struct swin_model *fm = calib_session_model(s);
	for (long it = 0; it < warmup + iters; it++) {
		struct one_batch src = { input, labels, B, 0 };
		size_t images;
		double t0 = qcal_now();
		if (swin_forward(&plan, fm, NULL, NULL, input, B, &err) != QCAL_OK) {
			rc = cli_fail("bench", &err);
			goto out_plan;
		}
		double t1 = qcal_now();
		if (calib_session_observe(s, one_batch_next, &src, &images, &err) != QCAL_OK) {
			rc = cli_fail("bench", &err);
			goto out_plan;
		}
		double t2 = qcal_now();
		if (it >= warmup) {
			tf[it - warmup] = t1 - t0;
			tc[it - warmup] = t2 - t1;
		}
		if (cli_interrupted()) {
			rc = QCAL_EXIT_INTERRUPTED;
			goto out_plan;
		}
	}
	double f = median(tf, iters), c = median(tc, iters);
	printf("qcal %s calibrate observer=%s config=%s batch=%d threads=%d ms_per_image=%.2f "
	       "forward_ms_per_image=%.2f ratio=%.2f peak_rss_mb=%.0f\n",
	       model->cfg.name[0] ? model->cfg.name : "model", observer ? observer : "config",
	       cfg.name, B, plan.threads, c / B * 1e3, f / B * 1e3, c / f,
	       (double)qcal_peak_rss_bytes() / (1 << 20));
	fflush(stdout);
	rc = QCAL_EXIT_OK;
out_plan:
	swin_plan_free(&plan);
out:
	calib_session_free(s);
	qconfig_free(&cfg);
	free(tf);
	free(tc);
	free(labels);
	return rc;
}

int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "arch", required_argument, NULL, 'a' },
		{ "batch", required_argument, NULL, 'b' },
		{ "iters", required_argument, NULL, 'n' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "threads", required_argument, NULL, 't' },
		{ "kernels", required_argument, NULL, 'k' },
		{ "mode", required_argument, NULL, 'M' },
		{ "observer", required_argument, NULL, 'O' },
		{ "config", required_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *model_path = NULL, *arch = "swin-t";
	const char *mode = "forward", *observer = "mse", *config_arg = "int8-default";
	int batches[16] = { 1, 8 }, nbatches = 2, c;
	long iters = 10, warmup = 2, threads = 0;
	const struct swin_kernels *kernels = swin_kernels_blas();
	struct qcal_err err = { 0 };
	struct swin_model model;
	int rc = QCAL_EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:b:n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'a': arch = optarg; break;
		case 'b':
			nbatches = cli_parse_int_list(optarg, batches, 16);
			if (nbatches < 0)
				return cli_usage_error("bench", "--batch wants a list like 1,8, got '%s'", optarg);
			break;
		case 'n':
			if (!cli_parse_int(optarg, 1, 100000, &iters))
				return cli_usage_error("bench", "--iters wants 1..100000, got '%s'", optarg);
			break;
		case 'w':
			if (!cli_parse_int(optarg, 0, 100000, &warmup))
				return cli_usage_error("bench", "--warmup wants 0..100000, got '%s'", optarg);
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 256, &threads))
				return cli_usage_error("bench", "--threads wants 1..256, got '%s'", optarg);
			break;
		case 'k':
			if (strcmp(optarg, "openblas") == 0)
				kernels = swin_kernels_blas();
			else if (strcmp(optarg, "naive") == 0)
				kernels = swin_kernels_naive();
			else
				return cli_usage_error("bench", "--kernels wants openblas or naive, got '%s'", optarg);
			break;
		case 'M':
			if (strcmp(optarg, "forward") && strcmp(optarg, "calibrate"))
				return cli_usage_error("bench", "--mode wants forward or calibrate, got '%s'", optarg);
			mode = optarg;
			break;
		case 'O': observer = optarg; break;
		case 'C': config_arg = optarg; break;
		case 'h': bench_help(); return QCAL_EXIT_OK;
		default: return cli_usage_error("bench", "invalid option");
		}
	}
	if (optind < argc)
		return cli_usage_error("bench", "unexpected argument '%s'", argv[optind]);

	if (model_path) {
		if (swin_model_load(&model, model_path, &err) != QCAL_OK)
			return cli_fail("bench", &err);
	} else {
		struct swin_config cfg;
		struct qcal_rng rng;
		if (strcmp(arch, "swin-t") != 0)
			return cli_usage_error("bench", "unknown --arch '%s' (known: swin-t)", arch);
		swin_config_swin_t(&cfg);
		if (swin_model_init(&model, &cfg, &err) != QCAL_OK)
			return cli_fail("bench", &err);
		qcal_rng_seed(&rng, 0);
		swin_model_randomize(&model, &rng);
	}
	const struct swin_config *cfg = &model.cfg;
	double flops = swin_forward_flops(cfg);
	for (int bi = 0; bi < nbatches && rc == QCAL_EXIT_OK; bi++) {
		int B = batches[bi];
		size_t n = (size_t)B * cfg->in_chans * cfg->img_size * cfg->img_size;
		float *input = malloc(n * sizeof(float));
		double *times = malloc((size_t)iters * sizeof(double));
		struct swin_plan plan;
		struct qcal_rng rng;
		if (!input || !times ||
		    swin_plan_init(&plan, cfg, B, 0, (int)threads, kernels, &err) != QCAL_OK) {
			if (!input || !times)
				qcal_err_set(&err, QCAL_ENOMEM, "out of memory");
			rc = cli_fail("bench", &err);
			free(input);
			free(times);
			break;
		}
		qcal_rng_seed(&rng, 1);
		for (size_t i = 0; i < n; i++)
			input[i] = qcal_rng_normal(&rng);
		if (!strcmp(mode, "calibrate")) {
			swin_plan_free(&plan);
			rc = bench_calibrate(&model, config_arg, observer, B, (int)threads, iters,
					     warmup, input);
			free(input);
			free(times);
			continue;
		}
		for (long it = 0; it < warmup + iters && rc == QCAL_EXIT_OK; it++) {
			double t0 = qcal_now();
			if (swin_forward(&plan, &model, NULL, NULL, input, B, &err) != QCAL_OK)
				rc = cli_fail("bench", &err);
			if (it >= warmup)
				times[it - warmup] = qcal_now() - t0;
			if (cli_interrupted())
				rc = QCAL_EXIT_INTERRUPTED;
		}
		if (rc == QCAL_EXIT_OK) {
			qsort(times, (size_t)iters, sizeof(double), cmp_double);
			double med = iters % 2 ? times[iters / 2]
					       : 0.5 * (times[iters / 2 - 1] + times[iters / 2]);
			printf("qcal %s forward batch=%d threads=%d ms_per_image=%.2f gflops=%.1f "
			       "peak_rss_mb=%.0f kernels=%s min_ms_per_image=%.2f\n",
			       cfg->name[0] ? cfg->name : "model", B, plan.threads,
			       med / B * 1e3, flops * B / med / 1e9,
			       (double)qcal_peak_rss_bytes() / (1 << 20), kernels->name,
			       times[0] / B * 1e3);
			fflush(stdout);
		}
		swin_plan_free(&plan);
		free(input);
		free(times);
	}
	swin_model_free(&model);
	return rc;
}
