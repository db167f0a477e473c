/*
 * qcal calibrate: observe a model on images and write a scale file.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/calibrate.h"
#include "calib/qconfig.h"
#include "calib/scales.h"
#include "core/clock.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/source.h"

static void calibrate_help(void)
{
	printf("usage: qcal calibrate --model M.h5 (--data DIR | --input X.h5) --config C --out FILE [options]\n"
	       "\n"
	       "Run the float model over images, observe every quantization point and write\n"
	       "its scale, zero point and range to a scale file.\n"
	       "\n"
	       "  -m, --model FILE      float checkpoint (HDF5)\n"
	       "  -c, --config NAME     quantization config: a shipped name (int8-default, j5, w4a8)\n"
	       "                        or a YAML file\n"
	       "  -o, --out FILE        scale file to write (atomically)\n"
	       "  -f, --format F        json (default; the file eval/qat/report read), hdf5 (scales\n"
	       "                        and integer weights) or tensorrt (calibration cache)\n"
	       "      --trt-version N   version in the TensorRT cache header (default 8601)\n"
	       "  -n, --images N        calibrate on a seeded, class-balanced sample of N images\n"
	       "                        (the same as --sample N)\n"
	       "      --observer KIND   observer for every activation point, overriding the config:\n"
	       "                        minmax, moving_average, percentile, entropy, mse\n"
	       "  -b, --batch N         images per forward pass (default 32)\n"
	       "  -t, --threads N       compute threads (default: all cores)\n"
	       SOURCE_HELP
	       "  -q, --quiet           no progress output\n"
	       "  -h, --help            this help\n"
	       "\n"
	       "example:\n"
	       "  qcal calibrate -m models/swin-micro-cifar10.h5 -d data/cifar10-sample -c j5 -o scales.json\n");
}

static const char *config_dir(void)
{
	const char *env = getenv("QCAL_CONFIG_DIR");
	return env && *env ? env : QCAL_CONFIG_DIR;
}

/* The observers leave NaN and Inf out of every range and count them; the
 * scales are sound for the finite values, but the user has to hear that
 * the data or the model produced non-finite activations. */
static void warn_non_finite(const struct scale_table *st, const struct qp_table *points)
{
	int bad = 0, first = -1;

	for (int i = 0; i < points->count; i++)
		if (st->points[i].nan_count + st->points[i].inf_count > 0 && bad++ == 0)
			first = i;
	if (bad)
		fprintf(stderr, "qcal calibrate: warning: %d points saw NaN or Inf values, left out "
			"of their ranges (first: %s, %llu NaN, %llu Inf); check the inputs "
			"and the model\n", bad, points->points[first].name,
			(unsigned long long)st->points[first].nan_count,
			(unsigned long long)st->points[first].inf_count);
}

int cmd_calibrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		SOURCE_LONG_OPTIONS,
		{ "config", required_argument, NULL, 'c' },
		{ "out", required_argument, NULL, 'o' },
		{ "format", required_argument, NULL, 'f' },
		{ "trt-version", required_argument, NULL, 'T' },
		{ "images", required_argument, NULL, 'n' },
		{ "observer", required_argument, NULL, 'O' },
		{ "batch", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *model_path = NULL, *config_arg = NULL, *out = NULL, *format = "json";
	const char *observer = NULL;
	long batch = 32, threads = 0, trt_version = 8601;
	struct source_options so = { 0 };
	bool quiet = false;
	int c, rc = QCAL_EXIT_FAILURE;
	struct qcal_err err = { 0 };

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:d:c:o:f:n:b:t:qh", opts, NULL)) != -1) {
		int handled = source_parse_option(&so, c, optarg, "calibrate");
		long v;
		if (handled < 0)
			return QCAL_EXIT_USAGE;
		if (handled)
			continue;
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'c': config_arg = optarg; break;
		case 'o': out = optarg; break;
		case 'f':
			if (strcmp(optarg, "json") && strcmp(optarg, "hdf5") && strcmp(optarg, "tensorrt"))
				return cli_usage_error("calibrate", "--format wants json, hdf5 or tensorrt, got '%s'", optarg);
			format = optarg;
			break;
		case 'T':
			if (!cli_parse_int(optarg, 1, 1000000, &trt_version))
				return cli_usage_error("calibrate", "--trt-version wants a number like 8601");
			break;
		case 'n':
			if (!cli_parse_int(optarg, 1, 1L << 40, &v))
				return cli_usage_error("calibrate", "--images wants a positive count, got '%s'", optarg);
			so.sample = v;
			break;
		case 'O': observer = optarg; break;
		case 'b':
			if (!cli_parse_int(optarg, 1, 4096, &batch))
				return cli_usage_error("calibrate", "--batch wants 1..4096, got '%s'", optarg);
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 256, &threads))
				return cli_usage_error("calibrate", "--threads wants 1..256, got '%s'", optarg);
			break;
		case 'q': quiet = true; break;
		case 'h': calibrate_help(); return QCAL_EXIT_OK;
		default: return cli_usage_error("calibrate", "invalid option");
		}
	}
	if (optind < argc)
		return cli_usage_error("calibrate", "unexpected argument '%s'", argv[optind]);
	if (!model_path || !config_arg || !out || (!so.data == !so.input))
		return cli_usage_error("calibrate",
				       "--model, --config, --out and one of --data or --input are required");
	if (cli_check_output("calibrate", out))
		return QCAL_EXIT_FAILURE;

	char config_path[1024];
	struct qconfig config;
	struct swin_model model;
	struct qp_table points;
	struct calib_session *session = NULL;
	struct source *src = NULL;
	struct scale_table scales;
	struct cli_progress bar;
	size_t images = 0;
	double t0;

	if (qconfig_locate(config_arg, config_dir(), config_path, sizeof(config_path), &err) != QCAL_OK)
		return cli_fail("calibrate", &err);
	if (qconfig_load(&config, config_path, &err) != QCAL_OK)
		return cli_fail("calibrate", &err);
	if (swin_model_load(&model, model_path, &err) != QCAL_OK) {
		rc = cli_fail("calibrate", &err);
		goto out_free_config;
	}
	if (qp_table_init(&points, &model.cfg, &model.table, &err) != QCAL_OK) {
		rc = cli_fail("calibrate", &err);
		goto out_free_model;
	}
	so.batch = (int)batch;
	so.folded = config.fold_input;
	if (source_open(&src, &model.cfg, &so, &err) != QCAL_OK) {
		rc = cli_fail("calibrate", &err);
		goto out_free_points;
	}
	cli_progress_init(&bar, "calibrate", "img", quiet);
	struct calib_options copt = {
		.batch = (int)batch, .threads = (int)threads, .total = source_count(src),
		.observer = observer, .progress = cli_progress_callback(&bar),
	};
	if (calib_session_create(&session, &model, &config, &copt, &err) != QCAL_OK) {
		rc = cli_fail("calibrate", &err);
		goto out_free_source;
	}
	t0 = qcal_now();
	if (calib_session_observe(session, source_next, src, &images, &err) != QCAL_OK) {
		cli_progress_finish(&bar, images, NULL);
		rc = cli_fail("calibrate", &err);
		goto out_free_session;
	}
	double seconds = qcal_now() - t0;
	cli_progress_finish(&bar, images, NULL);
	if (images == 0) {
		rc = cli_failf("calibrate", "no images were read from %s", source_describe(src));
		goto out_free_session;
	}
	if (calib_session_scales(session, &points, &scales, &err) != QCAL_OK) {
		rc = cli_fail("calibrate", &err);
		goto out_free_session;
	}
	scales.model_name = strdup(model.cfg.name);
	scales.model_file = strdup(model_path);
	scales.config_name = strdup(config.name);
	scales.config_file = strdup(config_path);
	scales.data = strdup(source_describe(src));
	scales.seed = so.seed;
	enum qcal_status wst;
	if (!strcmp(format, "json"))
		wst = scale_table_write_json(&scales, out, &err);
	else if (!strcmp(format, "hdf5"))
		wst = scale_table_write_hdf5(&scales, calib_session_model(session), out, &err);
	else
		wst = scale_table_write_tensorrt(&scales, out, (int)trt_version, &err);
	if (wst != QCAL_OK) {
		rc = cli_fail("calibrate", &err);
	} else {
		printf("calibrated %zu images in %.1f s (%.0f images/s); %d of %d points quantized (config %s)",
		       images, seconds, (double)images / seconds, scale_table_count_quantized(&scales),
		       points.count, config.name);
		const char *first_bad;
		size_t skipped = source_skipped(src, &first_bad);
		if (skipped)
			printf("; %zu unreadable images skipped (first: %s)", skipped, first_bad);
		printf("\nwrote %s (%s)\n", out, format);
		rc = QCAL_EXIT_OK;
		warn_non_finite(&scales, &points);
	}
	scale_table_free(&scales);
out_free_session:
	calib_session_free(session);
out_free_source:
	source_free(src);
out_free_points:
	qp_table_free(&points);
out_free_model:
	swin_model_free(&model);
out_free_config:
	qconfig_free(&config);
	return rc;
}
