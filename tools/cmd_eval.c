/*
 * qcal eval: accuracy of the float model on images, or with --scales of the
 * fake-quantized model beside its float twin (agreement, logit SQNR, KL).
 */
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calib/evaluate.h"
#include "calib/qmodel.h"
#include "calib/scales.h"
#include "core/atomic_file.h"
#include "core/clock.h"
#include "core/h5.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/source.h"

static void eval_help(void)
{
	printf("usage: qcal eval --model M.h5 (--data DIR | --input X.h5) [--scales S.json] [options]\n"
	       "\n"
	       "Top-1/top-5 accuracy and throughput.  With --scales, the fake-quantized model\n"
	       "(round half to even, as torch.fake_quantize_per_tensor_affine) is evaluated\n"
	       "beside the float model on the same images: argmax agreement, logit SQNR, KL.\n"
	       "\n"
	       "  -m, --model FILE        checkpoint (HDF5)\n"
	       SOURCE_HELP
	       "  -s, --scales FILE       scale file from qcal calibrate / qcal qat\n"
	       "  -r, --reference FILE    float checkpoint to measure agreement/SQNR against\n"
	       "                          (default: --model itself; give the original model\n"
	       "                          when --model holds QAT fine-tuned weights)\n"
	       "  -j, --json FILE         write {\"top1\", \"top5\", \"images\", \"images_per_s\", ...}\n"
	       "      --save-logits FILE  write every image's logits and label (HDF5)\n"
	       "  -b, --batch N           images per forward pass (default 64)\n"
	       "  -t, --threads N         compute threads (default: all cores)\n"
	       "  -q, --quiet             no progress output\n"
	       "  -h, --help              this help\n"
	       "\n"
	       "example:\n"
	       "  qcal eval -m models/swin-micro-cifar10.h5 -d ../shared/data/cifar10/test --json e.json\n");
}

struct logit_sink {
	float *logits, *float_logits;
	int *labels;
	size_t n, cap;
	int K;
	bool with_float;
};

static enum qcal_status sink_logits(void *user, const float *logits,
				    const float *float_logits, const int *labels,
				    int count, struct qcal_err *err)
{
	struct logit_sink *s = user;

	if (s->n + (size_t)count > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		while (cap < s->n + (size_t)count)
			cap *= 2;
		float *l = realloc(s->logits, cap * s->K * sizeof(float));
		if (l)
			s->logits = l;
		float *f = s->with_float ? realloc(s->float_logits, cap * s->K * sizeof(float)) : NULL;
		if (f)
			s->float_logits = f;
		int *lb = realloc(s->labels, cap * sizeof(int));
		if (lb)
			s->labels = lb;
		if (!l || !lb || (s->with_float && !f))
			return qcal_err_set(err, QCAL_ENOMEM, "--save-logits: out of memory");
		s->cap = cap;
	}
	memcpy(s->logits + s->n * s->K, logits, (size_t)count * s->K * sizeof(float));
	if (s->with_float && float_logits)
		memcpy(s->float_logits + s->n * s->K, float_logits, (size_t)count * s->K * sizeof(float));
	memcpy(s->labels + s->n, labels, (size_t)count * sizeof(int));
	s->n += (size_t)count;
	return QCAL_OK;
}

static enum qcal_status write_logits(const struct logit_sink *s, const char *path,
				     struct qcal_err *err)
{
	int64_t dims[2] = { (int64_t)s->n, s->K }, nl = (int64_t)s->n;
	int64_t *labels = malloc((s->n ? s->n : 1) * sizeof(int64_t));
	hid_t f;
	int bad = 0;

	if (!labels)
		return qcal_err_set(err, QCAL_ENOMEM, "%s: out of memory", path);
	for (size_t i = 0; i < s->n; i++)
		labels[i] = s->labels[i];
	f = qcal_h5_create(path, err);
	if (f < 0) {
		free(labels);
		return QCAL_ENOMEM;
	}
	bad |= qcal_h5_write_float(f, "logits", s->logits, 2, dims) < 0;
	bad |= qcal_h5_write_int64(f, "labels", labels, 1, &nl) < 0;
	if (s->with_float)
		bad |= qcal_h5_write_float(f, "float_logits", s->float_logits, 2, dims) < 0;
	free(labels);
	if (bad) {
		qcal_h5_discard(f);
		return qcal_err_set(err, QCAL_EIO, "%s: cannot build the logits file (out of memory?)",
				    path);
	}
	return qcal_h5_commit(f, path, err);
}

static json_t *num_or_null(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

int cmd_eval(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		SOURCE_LONG_OPTIONS,
		{ "scales", required_argument, NULL, 's' },
		{ "reference", required_argument, NULL, 'r' },
		{ "json", required_argument, NULL, 'j' },
		{ "save-logits", required_argument, NULL, 'l' },
		{ "batch", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *model_path = NULL, *scales_path = NULL, *json_path = NULL, *logits_path = NULL;
	const char *reference_path = NULL;
	long batch = 64, threads = 0;
	struct source_options so = { 0 };
	bool quiet = false;
	int c, rc = QCAL_EXIT_FAILURE;
	struct qcal_err err = { 0 };

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:d:s:r:j:b:t:qh", opts, NULL)) != -1) {
		int handled = source_parse_option(&so, c, optarg, "eval");
		if (handled < 0)
			return QCAL_EXIT_USAGE;
		if (handled)
			continue;
		switch (c) {
		case 'm': model_path = optarg; break;
		case 's': scales_path = optarg; break;
		case 'r': reference_path = optarg; break;
		case 'j': json_path = optarg; break;
		case 'l': logits_path = optarg; break;
		case 'b':
			if (!cli_parse_int(optarg, 1, 4096, &batch))
				return cli_usage_error("eval", "--batch wants 1..4096, got '%s'", optarg);
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 256, &threads))
				return cli_usage_error("eval", "--threads wants 1..256, got '%s'", optarg);
			break;
		case 'q': quiet = true; break;
		case 'h': eval_help(); return QCAL_EXIT_OK;
		default: return cli_usage_error("eval", "invalid option");
		}
	}
	if (optind < argc)
		return cli_usage_error("eval", "unexpected argument '%s'", argv[optind]);
	if (!model_path || (!so.data == !so.input))
		return cli_usage_error("eval", "--model and one of --data or --input are required");
	if (reference_path && !scales_path)
		return cli_usage_error("eval", "--reference compares a quantized model: it needs --scales");
	if (cli_check_output("eval", logits_path) || cli_check_output("eval", json_path))
		return QCAL_EXIT_FAILURE;

	struct swin_model model;
	struct qp_table points;
	struct scale_table scales;
	struct qmodel qm;
	struct source *src = NULL;
	struct metrics m;
	struct cli_progress bar;
	struct logit_sink sink = { 0 };
	bool have_scales = false, have_qm = false;

	if (swin_model_load(&model, model_path, &err) != QCAL_OK)
		return cli_fail("eval", &err);
	if (qp_table_init(&points, &model.cfg, &model.table, &err) != QCAL_OK) {
		rc = cli_fail("eval", &err);
		goto out_free_model;
	}
	if (scales_path) {
		if (scale_table_read_json(&scales, &points, scales_path, &err) != QCAL_OK) {
			rc = cli_fail("eval", &err);
			goto out_free_points;
		}
		have_scales = true;
		if (qmodel_init(&qm, &model, &scales, (int)threads, &err) != QCAL_OK) {
			rc = cli_fail("eval", &err);
			goto out_free_scales;
		}
		have_qm = true;
		if (reference_path) {
			struct swin_model ref;
			if (swin_model_load(&ref, reference_path, &err) != QCAL_OK) {
				rc = cli_fail("eval", &err);
				goto out_free_qm;
			}
			enum qcal_status st = qmodel_set_reference(&qm, &ref, &err);
			swin_model_free(&ref);
			if (st != QCAL_OK) {
				rc = cli_fail("eval", &err);
				goto out_free_qm;
			}
		}
	}
	so.batch = (int)batch;
	so.folded = have_scales ? scales.input_folded : model.input_folded;
	if (source_open(&src, &model.cfg, &so, &err) != QCAL_OK) {
		rc = cli_fail("eval", &err);
		goto out_free_qm;
	}
	cli_progress_init(&bar, "eval", "img", quiet);
	sink.K = model.cfg.num_classes;
	sink.with_float = have_qm;
	struct eval_options eo = {
		.batch = (int)batch, .threads = (int)threads, .total = source_count(src),
		.progress = cli_progress_callback(&bar),
		.on_logits = logits_path ? sink_logits : NULL, .on_logits_user = &sink,
	};
	double t0 = qcal_now();
	if (eval_run(&model, have_qm ? &qm : NULL, source_next, src, &eo, &m, &err) != QCAL_OK) {
		cli_progress_finish(&bar, (size_t)m.images, NULL);
		rc = cli_fail("eval", &err);
		goto out_free_source;
	}
	double seconds = qcal_now() - t0, ips = m.images / (seconds > 0 ? seconds : 1e-9);
	cli_progress_finish(&bar, (size_t)m.images, NULL);
	if (m.images == 0) {
		rc = cli_failf("eval", "no images were read from %s", source_describe(src));
		goto out_free_source;
	}
	if (have_qm) {
		printf("%s on %lld images (%s): top-1 %.2f%%, top-5 %.2f%% (float top-1 %.2f%%); agreement with float %.2f%%; logit SQNR %.2f dB; KL %.3g; %.0f images/s\n",
		       scales.config_name ? scales.config_name : "quantized", (long long)m.images,
		       source_describe(src), 100 * metrics_top1(&m), 100 * metrics_top5(&m),
		       100 * metrics_float_top1(&m), 100 * metrics_agreement(&m),
		       metrics_sqnr_db(&m), metrics_mean_kl(&m), ips);
	} else {
		printf("float on %lld images (%s): top-1 %.2f%%, top-5 %.2f%%; %.0f images/s\n",
		       (long long)m.images, source_describe(src), 100 * metrics_top1(&m),
		       100 * metrics_top5(&m), ips);
	}
	const char *first_bad;
	size_t skipped = source_skipped(src, &first_bad);
	if (skipped)
		printf("%zu unreadable images skipped (first: %s)\n", skipped, first_bad);
	rc = QCAL_EXIT_OK;
	if (json_path) {
		json_t *o = json_object();
		json_object_set_new(o, "top1", num_or_null(metrics_top1(&m)));
		json_object_set_new(o, "top5", num_or_null(metrics_top5(&m)));
		json_object_set_new(o, "images", json_integer(m.images));
		json_object_set_new(o, "images_per_s", json_real(ips));
		json_object_set_new(o, "skipped", json_integer((json_int_t)skipped));
		if (have_qm) {
			json_object_set_new(o, "float_top1", num_or_null(metrics_float_top1(&m)));
			json_object_set_new(o, "agreement", num_or_null(metrics_agreement(&m)));
			json_object_set_new(o, "logit_sqnr_db", num_or_null(metrics_sqnr_db(&m)));
			json_object_set_new(o, "logit_kl", num_or_null(metrics_mean_kl(&m)));
			json_object_set_new(o, "scales", json_string(scales_path));
			json_object_set_new(o, "reference", json_string(reference_path ? reference_path : model_path));
		}
		char *text = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(10) | JSON_PRESERVE_ORDER);
		json_decref(o);
		if (!text || qcal_write_file_atomic(json_path, text, strlen(text), &err) != QCAL_OK)
			rc = text ? cli_fail("eval", &err) : cli_failf("eval", "out of memory");
		free(text);
	}
	if (rc == QCAL_EXIT_OK && logits_path) {
		if (write_logits(&sink, logits_path, &err) != QCAL_OK)
			rc = cli_fail("eval", &err);
	}
out_free_source:
	source_free(src);
	free(sink.logits);
	free(sink.float_logits);
	free(sink.labels);
out_free_qm:
	if (have_qm)
		qmodel_free(&qm);
out_free_scales:
	if (have_scales)
		scale_table_free(&scales);
out_free_points:
	qp_table_free(&points);
out_free_model:
	swin_model_free(&model);
	return rc;
}
