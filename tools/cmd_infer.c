/*
 * qcal infer: run the float model on a normalised NCHW tensor read from an
 * HDF5 dataset and write the logits to HDF5, so that qcal can be diffed
 * against any other framework on identical inputs.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/finite.h"
#include "core/h5.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void infer_help(void)
{
	printf("usage: qcal infer --model M.h5 --input X.h5 --out logits.h5 [options]\n"
	       "\n"
	       "Run the float model on a normalised NCHW float tensor and write its logits.\n"
	       "\n"
	       "  -m, --model FILE     checkpoint (HDF5, see tools/convert_checkpoint.py)\n"
	       "  -i, --input FILE     HDF5 file holding the input tensor (B, C, H, W)\n"
	       "      --dataset NAME   dataset inside --input (default: input)\n"
	       "  -o, --out FILE       output HDF5: dataset 'logits' (B, classes), float32\n"
	       "  -b, --batch N        images per forward pass (default 32)\n"
	       "  -t, --threads N      worker threads (default: all cores)\n"
	       "  -h, --help           this help\n"
	       "\n"
	       "example:\n"
	       "  qcal infer -m weights.h5 -i reference.h5 -o logits.h5\n");
}

int cmd_infer(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "input", required_argument, NULL, 'i' },
		{ "dataset", required_argument, NULL, 'd' },
		{ "out", required_argument, NULL, 'o' },
		{ "batch", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *model_path = NULL, *input_path = NULL, *out_path = NULL;
	const char *dataset = "input";
	long batch = 32, threads = 0;
	struct qcal_err err = { 0 };
	struct swin_model model;
	struct swin_plan plan;
	struct qcal_h5_shape shape;
	float *input = NULL, *logits = NULL;
	int rc = QCAL_EXIT_FAILURE, c;
	hid_t in_file;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:i:o:b:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'i': input_path = optarg; break;
		case 'd': dataset = optarg; break;
		case 'o': out_path = optarg; break;
		case 'b':
			if (!cli_parse_int(optarg, 1, 4096, &batch))
				return cli_usage_error("infer", "--batch wants 1..4096, got '%s'", optarg);
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 256, &threads))
				return cli_usage_error("infer", "--threads wants 1..256, got '%s'", optarg);
			break;
		case 'h': infer_help(); return QCAL_EXIT_OK;
		default: return cli_usage_error("infer", "invalid option");
		}
	}
	if (optind < argc)
		return cli_usage_error("infer", "unexpected argument '%s'", argv[optind]);
	if (!model_path || !input_path || !out_path)
		return cli_usage_error("infer", "--model, --input and --out are required");
	if (cli_check_output("infer", out_path))
		return QCAL_EXIT_FAILURE;

	if (swin_model_load(&model, model_path, &err) != QCAL_OK)
		return cli_fail("infer", &err);
	in_file = qcal_h5_open_read(input_path, &err);
	if (in_file < 0) {
		rc = cli_fail("infer", &err);
		goto out_free_model;
	}
	if (qcal_h5_read_float(in_file, input_path, dataset, &input, &shape, &err) != QCAL_OK) {
		rc = cli_fail("infer", &err);
		goto out_close_input;
	}
	const struct swin_config *cfg = &model.cfg;
	if (shape.ndim != 4 || shape.dims[1] != cfg->in_chans ||
	    shape.dims[2] != cfg->img_size || shape.dims[3] != cfg->img_size) {
		rc = cli_failf("infer",
			       "%s: dataset %s has shape %dD (%lld, %lld, %lld, %lld), expected (B, %d, %d, %d) for %s",
			       input_path, dataset, shape.ndim, (long long)shape.dims[0],
			       (long long)(shape.ndim > 1 ? shape.dims[1] : 0),
			       (long long)(shape.ndim > 2 ? shape.dims[2] : 0),
			       (long long)(shape.ndim > 3 ? shape.dims[3] : 0),
			       cfg->in_chans, cfg->img_size, cfg->img_size, model_path);
		goto out_close_input;
	}
	size_t bad, first = qcal_first_non_finite(input, qcal_h5_shape_numel(&shape), &bad);
	if (bad) {
		size_t hw = (size_t)cfg->img_size * cfg->img_size, chw = hw * cfg->in_chans;
		rc = cli_failf("infer", "%s: dataset %s holds %zu non-finite value%s (first: %g at "
			       "[%zu, %zu, %zu, %zu]); logits of such an input mean nothing",
			       input_path, dataset, bad, bad > 1 ? "s" : "", (double)input[first],
			       first / chw, first % chw / hw, first % hw / cfg->img_size,
			       first % cfg->img_size);
		goto out_close_input;
	}
	long total = (long)shape.dims[0];
	if (batch > total)
		batch = total > 0 ? total : 1;
	logits = malloc((size_t)(total ? total : 1) * cfg->num_classes * sizeof(float));
	if (!logits || swin_plan_init(&plan, cfg, (int)batch, 0, (int)threads, NULL, &err) != QCAL_OK) {
		if (!logits)
			qcal_err_set(&err, QCAL_ENOMEM, "out of memory");
		rc = cli_fail("infer", &err);
		goto out_close_input;
	}
	size_t per_image = (size_t)cfg->in_chans * cfg->img_size * cfg->img_size;
	for (long start = 0; start < total; start += batch) {
		int n = (int)(total - start < batch ? total - start : batch);
		if (swin_forward(&plan, &model, NULL, NULL, input + start * per_image, n,
				 &err) != QCAL_OK) {
			rc = cli_fail("infer", &err);
			goto out_free_plan;
		}
		size_t nl = (size_t)n * cfg->num_classes, i = qcal_first_non_finite(plan.logits, nl, NULL);
		if (i < nl) {
			rc = cli_failf("infer", "image %ld of %s: the logits are not finite (%g): "
				       "the model's activations overflow float32",
				       start + (long)(i / (size_t)cfg->num_classes), input_path,
				       (double)plan.logits[i]);
			goto out_free_plan;
		}
		memcpy(logits + start * cfg->num_classes, plan.logits,
		       (size_t)n * cfg->num_classes * sizeof(float));
	}

	hid_t out = qcal_h5_create(out_path, &err);
	int64_t dims[2] = { total, cfg->num_classes };
	if (out < 0) {
		rc = cli_fail("infer", &err);
	} else if (qcal_h5_write_float(out, "logits", logits, 2, dims) < 0 ||
		   qcal_h5_write_string_attr(out, "model", model_path) < 0) {
		qcal_h5_discard(out);
		rc = cli_failf("infer", "%s: cannot build the logits file (out of memory?)", out_path);
	} else if (qcal_h5_commit(out, out_path, &err) != QCAL_OK) {
		rc = cli_fail("infer", &err);
	} else {
		printf("wrote %s: logits (%ld, %d)\n", out_path, total, cfg->num_classes);
		rc = QCAL_EXIT_OK;
	}
out_free_plan:
	swin_plan_free(&plan);
out_close_input:
	free(input);
	free(logits);
	if (in_file >= 0)
		H5Fclose(in_file);
out_free_model:
	swin_model_free(&model);
	return rc;
}
