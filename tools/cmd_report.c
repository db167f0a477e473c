/*
 * qcal report: where the accuracy of a quantized model goes, as JSON,
 * Markdown and HTML, with sensitivity analysis, optional auto-precision and
 * a regression gate for CI.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "calib/analysis.h"
#include "calib/evaluate.h"
#include "calib/qconfig.h"
#include "calib/qmodel.h"
#include "calib/report.h"
#include "calib/scales.h"
#include "tools/cli.h"
#include "tools/commands.h"
#include "tools/report_render.h"
#include "tools/source.h"

static void report_help(void)
{
	printf("usage: qcal report --model M.h5 --scales S.json (--data VAL | --input X.h5) [options]\n"
	       "\n"
	       "Float vs quantized accuracy, per-point error (SQNR, cosine, clipping) with\n"
	       "everything upstream quantized and alone, sensitivity of groups of points, and\n"
	       "report.json / report.md / report.html in --out.\n"
	       "\n"
	       "  -m, --model FILE            float checkpoint\n"
	       "  -s, --scales FILE           scale file (qcal calibrate / qcal qat)\n"
	       "  -o, --out DIR               output folder (default: report)\n"
	       "      --analysis-images N     images for the per-point errors (default 256)\n"
	       "      --sensitivity-images N  images for each sensitivity evaluation (default 1000)\n"
	       "      --no-sensitivity        skip the group sensitivity analysis\n"
	       "      --baseline FILE         an earlier report.json to gate against\n"
	       "      --max-drop X            gate / auto-precision: allowed top-1 drop in points\n"
	       "                              (gate: vs the baseline; auto-precision: vs float)\n"
	       "      --max-sqnr-drop D       gate: allowed per-point SQNR drop in dB (default 3)\n"
	       "      --auto-precision        promote the most sensitive kind groups to int16 until\n"
	       "                              the top-1 drop vs float is at most --max-drop\n"
	       "      --config FILE           the config the scales came from (for auto-precision;\n"
	       "                              default: the one the scale file names)\n"
	       "      --config-out FILE       where auto-precision writes its config\n"
	       "                              (default: <out>/auto-precision.yaml)\n"
	       "  -b, --batch N               images per forward pass (default 32)\n"
	       "  -t, --threads N             compute threads (default: all cores)\n"
	       "  -q, --quiet                 no progress output\n"
	       "  -h, --help                  this help\n"
	       "validation images (all of them for the accuracy figures):\n"
	       SOURCE_HELP
	       "\n"
	       "exit codes: 0 report written (and gate passed), 3 gate tripped (one line says why),\n"
	       "1 failure, 2 usage.\n");
}

struct run_ctx {
	const struct swin_model *model;
	const struct swin_config *cfg;
	struct source_options so;
	int batch, threads;
	bool quiet;
};

/* Evaluate scales (quantized vs float) on the images so describes. */
static enum qcal_status evaluate_scales(const struct run_ctx *rc, const struct scale_table *st,
					long limit, const char *label, struct metrics *m,
					struct qcal_err *err)
{
	struct qmodel qm;
	struct source *src;
	struct source_options so = rc->so;
	struct cli_progress bar;
	enum qcal_status s;

	so.folded = st->input_folded;
	if (limit > 0 && (so.limit == 0 || limit < so.limit))
		so.limit = limit;
	s = qmodel_init(&qm, rc->model, st, rc->threads, err);
	if (s != QCAL_OK)
		return s;
	s = source_open(&src, rc->cfg, &so, err);
	if (s != QCAL_OK) {
		qmodel_free(&qm);
		return s;
	}
	cli_progress_init(&bar, label, "img", rc->quiet);
	struct eval_options eo = {
		.batch = rc->batch, .threads = rc->threads, .total = source_count(src),
		.progress = cli_progress_callback(&bar),
	};
	s = eval_run(rc->model, &qm, source_next, src, &eo, m, err);
	cli_progress_finish(&bar, (size_t)m->images, NULL);
	source_free(src);
	qmodel_free(&qm);
	return s;
}

static int ensure_dir(const char *dir)
{
	if (mkdir(dir, 0777) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

static double drop_points(const struct metrics *m)
{
	return 100.0 * (metrics_float_top1(m) - metrics_top1(m));
}

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "scales", required_argument, NULL, 's' },
		SOURCE_LONG_OPTIONS,
		{ "out", required_argument, NULL, 'o' },
		{ "analysis-images", required_argument, NULL, 'A' },
		{ "sensitivity-images", required_argument, NULL, 'E' },
		{ "no-sensitivity", no_argument, NULL, 'N' },
		{ "baseline", required_argument, NULL, 'B' },
		{ "max-drop", required_argument, NULL, 'X' },
		{ "max-sqnr-drop", required_argument, NULL, 'Q' },
		{ "auto-precision", no_argument, NULL, 'P' },
		{ "config", required_argument, NULL, 'c' },
		{ "config-out", required_argument, NULL, 'C' },
		{ "batch", required_argument, NULL, 'b' },
		{ "threads", required_argument, NULL, 't' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *model_path = NULL, *scales_path = NULL, *out_dir = "report";
	const char *baseline_path = NULL, *config_arg = NULL, *config_out = NULL;
	long analysis_images = 256, sensitivity_images = 1000, batch = 32, threads = 0;
	double max_drop = NAN, max_sqnr_drop = 3.0;
	bool sensitivity = true, auto_precision = false, quiet = false;
	struct source_options so = { 0 };
	struct qcal_err err = { 0 };
	int c, rc = QCAL_EXIT_FAILURE;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:s:d:o:b:t:c:qh", opts, NULL)) != -1) {
		int handled = source_parse_option(&so, c, optarg, "report");
		if (handled < 0)
			return QCAL_EXIT_USAGE;
		if (handled)
			continue;
		switch (c) {
		case 'm': model_path = optarg; break;
		case 's': scales_path = optarg; break;
		case 'o': out_dir = optarg; break;
		case 'A':
			if (!cli_parse_int(optarg, 1, 1L << 40, &analysis_images))
				return cli_usage_error("report", "--analysis-images wants a positive count");
			break;
		case 'E':
			if (!cli_parse_int(optarg, 1, 1L << 40, &sensitivity_images))
				return cli_usage_error("report", "--sensitivity-images wants a positive count");
			break;
		case 'N': sensitivity = false; break;
		case 'B': baseline_path = optarg; break;
		case 'X':
			if (!cli_parse_double(optarg, &max_drop) || max_drop < 0)
				return cli_usage_error("report", "--max-drop wants a non-negative number of points");
			break;
		case 'Q':
			if (!cli_parse_double(optarg, &max_sqnr_drop) || max_sqnr_drop < 0)
				return cli_usage_error("report", "--max-sqnr-drop wants a non-negative number of dB");
			break;
		case 'P': auto_precision = true; break;
		case 'c': config_arg = optarg; break;
		case 'C': config_out = optarg; break;
		case 'b':
			if (!cli_parse_int(optarg, 1, 4096, &batch))
				return cli_usage_error("report", "--batch wants 1..4096");
			break;
		case 't':
			if (!cli_parse_int(optarg, 1, 256, &threads))
				return cli_usage_error("report", "--threads wants 1..256");
			break;
		case 'q': quiet = true; break;
		case 'h': report_help(); return QCAL_EXIT_OK;
		default: return cli_usage_error("report", "invalid option");
		}
	}
	if (optind < argc)
		return cli_usage_error("report", "unexpected argument '%s'", argv[optind]);
	if (!model_path || !scales_path || (!so.data == !so.input))
		return cli_usage_error("report", "--model, --scales and one of --data or --input are required");
	if ((baseline_path || auto_precision) && !isfinite(max_drop))
		return cli_usage_error("report", "--baseline and --auto-precision need --max-drop");

	struct swin_model model;
	struct qp_table points;
	struct scale_table scales;
	struct report rep;
	struct analysis_group *groups = NULL;
	int ngroups = 0;
	char path[1200];

	/* a baseline that cannot be read fails before minutes of analysis */
	struct report_baseline base;
	bool have_base = false;
	if (baseline_path) {
		if (report_baseline_load(&base, baseline_path, &err) != QCAL_OK)
			return cli_fail("report", &err);
		have_base = true;
	}
	report_init(&rep);
	if (swin_model_load(&model, model_path, &err) != QCAL_OK) {
		rc = cli_fail("report", &err);
		goto out_free_base;
	}
	if (qp_table_init(&points, &model.cfg, &model.table, &err) != QCAL_OK) {
		rc = cli_fail("report", &err);
		goto out_free_model;
	}
	if (scale_table_read_json(&scales, &points, scales_path, &err) != QCAL_OK) {
		rc = cli_fail("report", &err);
		goto out_free_points;
	}
	if (ensure_dir(out_dir) != 0) {
		rc = cli_failf("report", "%s: cannot create the output folder: %s", out_dir, strerror(errno));
		goto out_free_scales;
	}
	so.batch = (int)batch;
	struct run_ctx run = {
		.model = &model, .cfg = &model.cfg, .so = so, .batch = (int)batch,
		.threads = (int)threads, .quiet = quiet,
	};
	rep.scales = &scales;
	rep.model_file = strdup(model_path);
	rep.scales_file = strdup(scales_path);
	rep.config_name = scales.config_name ? strdup(scales.config_name) : NULL;
	rep.data = strdup(so.data ? so.data : so.input);

	/* 1. accuracy on the whole set */
	if (evaluate_scales(&run, &scales, 0, "accuracy", &rep.overall, &err) != QCAL_OK) {
		rc = cli_fail("report", &err);
		goto out_free_report;
	}
	/* 2. per-point errors */
	{
		struct qmodel qm;
		struct source *src;
		struct source_options aso = so;
		struct cli_progress bar;
		aso.folded = scales.input_folded;
		aso.limit = so.limit && so.limit < analysis_images ? so.limit : analysis_images;
		rep.points = calloc((size_t)points.count, sizeof(*rep.points));
		if (!rep.points) {
			rc = cli_failf("report", "out of memory");
			goto out_free_report;
		}
		if (qmodel_init(&qm, &model, &scales, (int)threads, &err) != QCAL_OK) {
			rc = cli_fail("report", &err);
			goto out_free_report;
		}
		if (source_open(&src, &model.cfg, &aso, &err) != QCAL_OK) {
			qmodel_free(&qm);
			rc = cli_fail("report", &err);
			goto out_free_report;
		}
		cli_progress_init(&bar, "per-point errors", "img", quiet);
		int abatch = batch < 16 ? (int)batch : 16;
		struct source_options bso = aso;
		bso.batch = abatch;
		source_free(src);
		if (source_open(&src, &model.cfg, &bso, &err) != QCAL_OK) {
			qmodel_free(&qm);
			rc = cli_fail("report", &err);
			goto out_free_report;
		}
		struct eval_options eo = {
			.batch = abatch, .threads = (int)threads, .total = source_count(src),
			.progress = cli_progress_callback(&bar),
		};
		enum qcal_status s = analysis_point_errors(&qm, &scales, source_next, src, &eo,
							   rep.points, &err);
		rep.analysis_images = (int64_t)source_count(src);
		cli_progress_finish(&bar, source_count(src), NULL);
		source_free(src);
		qmodel_free(&qm);
		if (s != QCAL_OK) {
			rc = cli_fail("report", &err);
			goto out_free_report;
		}
	}
	/* 3. sensitivity */
	if (sensitivity || auto_precision) {
		if (analysis_groups(&scales, &groups, &ngroups, &err) != QCAL_OK) {
			rc = cli_fail("report", &err);
			goto out_free_report;
		}
		rep.groups = calloc((size_t)ngroups, sizeof(*rep.groups));
		if (!rep.groups) {
			rc = cli_failf("report", "out of memory");
			goto out_free_report;
		}
		rep.num_groups = ngroups;
		for (int g = 0; g < ngroups; g++) {
			struct report_group *rg = &rep.groups[g];
			struct scale_table sub;
			char label[96];
			snprintf(rg->name, sizeof(rg->name), "%s", groups[g].name);
			rg->by = groups[g].by == GROUP_BY_KIND ? "kind" : "block";
			rg->size = groups[g].size;
			for (int keep = 1; keep >= 0; keep--) {
				if (analysis_subset_scales(&scales, groups[g].members, keep, &sub, &err) != QCAL_OK) {
					rc = cli_fail("report", &err);
					goto out_free_report;
				}
				snprintf(label, sizeof(label), "[%d/%d] %s %s", g + 1, ngroups,
					 keep ? "only" : "all but", groups[g].name);
				enum qcal_status s = evaluate_scales(&run, &sub, sensitivity_images, label,
								     keep ? &rg->only : &rg->without, &err);
				scale_table_free(&sub);
				if (s != QCAL_OK) {
					rc = cli_fail("report", &err);
					goto out_free_report;
				}
				rep.sensitivity_images = rg->only.images;
			}
		}
	}
	/* 4. auto-precision: promote kind groups, most sensitive first */
	if (auto_precision) {
		struct scale_table work;
		int order[64], n = 0;
		const char *kinds_of[64][8];
		int nkinds_of[64];
		if (scale_table_copy(&work, &scales, &err) != QCAL_OK) {
			rc = cli_fail("report", &err);
			goto out_free_report;
		}
		for (int g = 0; g < ngroups && n < 64; g++)
			if (groups[g].by == GROUP_BY_KIND)
				order[n++] = g;
		/* most sensitive = lowest logit SQNR when quantized alone */
		for (int i = 1; i < n; i++)
			for (int j = i; j > 0 && metrics_sqnr_db(&rep.groups[order[j]].only) <
						 metrics_sqnr_db(&rep.groups[order[j - 1]].only); j--) {
				int t = order[j];
				order[j] = order[j - 1];
				order[j - 1] = t;
			}
		rep.auto_precision = true;
		rep.max_drop = max_drop;
		rep.promoted = calloc(64, sizeof(char *));
		struct metrics cur = rep.overall;
		const char *promoted_kinds[QP_KIND_COUNT];
		int npk = 0;
		for (int k = 0; k < n && drop_points(&cur) > max_drop; k++) {
			int g = order[k];
			nkinds_of[k] = 0;
			for (int i = 0; i < points.count; i++)
				if (groups[g].members[i]) {
					const char *kn = qp_kind_name(points.points[i].kind);
					bool seen = false;
					for (int j = 0; j < nkinds_of[k]; j++)
						seen |= !strcmp(kinds_of[k][j], kn);
					if (!seen && nkinds_of[k] < 8)
						kinds_of[k][nkinds_of[k]++] = kn;
				}
			scale_table_promote(&work, groups[g].members, QCAL_DTYPE_INT16);
			for (int j = 0; j < nkinds_of[k] && npk < QP_KIND_COUNT; j++)
				promoted_kinds[npk++] = kinds_of[k][j];
			rep.promoted[rep.num_promoted++] = strdup(groups[g].name);
			if (evaluate_scales(&run, &work, 0, "auto-precision", &cur, &err) != QCAL_OK) {
				scale_table_free(&work);
				rc = cli_fail("report", &err);
				goto out_free_report;
			}
			if (!quiet)
				fprintf(stderr, "auto-precision: %s -> int16: top-1 %.2f%% (drop %.2f points)\n",
					groups[g].name, 100 * metrics_top1(&cur), drop_points(&cur));
		}
		rep.after_promotion = cur;
		scale_table_free(&work);
		/* the config to reproduce it */
		char cfg_path[1024];
		struct qconfig cfg;
		const char *cfg_name = config_arg ? config_arg : scales.config_file;
		if (!cfg_name || qconfig_locate(cfg_name, QCAL_CONFIG_DIR, cfg_path, sizeof(cfg_path), &err) != QCAL_OK ||
		    qconfig_load(&cfg, cfg_path, &err) != QCAL_OK) {
			rc = cfg_name ? cli_fail("report", &err)
				      : cli_failf("report", "--auto-precision: the scale file names no config; pass --config");
			goto out_free_report;
		}
		if (config_out)
			snprintf(path, sizeof(path), "%s", config_out);
		else
			snprintf(path, sizeof(path), "%s/auto-precision.yaml", out_dir);
		char name[256];
		snprintf(name, sizeof(name), "%s-auto", cfg.name);
		enum qcal_status s = qconfig_write_with_promotions(&cfg, path, name,
								   "auto-precision: promoted kinds to int16",
								   promoted_kinds, npk, QCAL_DTYPE_INT16, &err);
		qconfig_free(&cfg);
		if (s != QCAL_OK) {
			rc = cli_fail("report", &err);
			goto out_free_report;
		}
		rep.promoted_config = strdup(path);
		if (drop_points(&cur) > max_drop)
			fprintf(stderr, "auto-precision: every kind group promoted, drop still %.2f points\n",
				drop_points(&cur));
	}
	/* 5. outputs */
	snprintf(path, sizeof(path), "%s/report.json", out_dir);
	if (report_write_json(&rep, path, &err) != QCAL_OK) {
		rc = cli_fail("report", &err);
		goto out_free_report;
	}
	snprintf(path, sizeof(path), "%s/report.md", out_dir);
	if (report_write_markdown(&rep, path, &err) != QCAL_OK) {
		rc = cli_fail("report", &err);
		goto out_free_report;
	}
	snprintf(path, sizeof(path), "%s/report.html", out_dir);
	if (report_write_html(&rep, path, &err) != QCAL_OK) {
		rc = cli_fail("report", &err);
		goto out_free_report;
	}
	printf("%s: top-1 %.2f%% (float %.2f%%), agreement %.2f%%, logit SQNR %.2f dB; wrote %s/report.{json,md,html}\n",
	       rep.config_name ? rep.config_name : "quantized", 100 * metrics_top1(&rep.overall),
	       100 * metrics_float_top1(&rep.overall), 100 * metrics_agreement(&rep.overall),
	       metrics_sqnr_db(&rep.overall), out_dir);
	rc = QCAL_EXIT_OK;
	/* 6. the gate */
	if (have_base) {
		char reason[512];
		if (!report_gate(&rep, &base, baseline_path, max_drop, max_sqnr_drop, reason, sizeof(reason))) {
			fprintf(stderr, "qcal report: gate failed: %s\n", reason);
			rc = QCAL_EXIT_GATE;
		} else {
			printf("gate passed: %s\n", reason);
		}
	}
out_free_report:
	analysis_groups_free(groups, ngroups);
	report_free(&rep);
out_free_scales:
	scale_table_free(&scales);
out_free_points:
	qp_table_free(&points);
out_free_model:
	swin_model_free(&model);
out_free_base:
	if (have_base)
		report_baseline_free(&base);
	return rc;
}
