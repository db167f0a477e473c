/*
 * Markdown and HTML rendering of reports.  The HTML has no external
 * resources (no scripts, fonts or images): charts are inline SVG, so the
 * file can be attached to a CI run and opened anywhere.
 */
#include "tools/report_render.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

static void pct(FILE *f, double v)
{
	if (isfinite(v))
		fprintf(f, "%.2f%%", 100.0 * v);
	else
		fprintf(f, "n/a");
}

static void dbl(FILE *f, const char *fmt, double v)
{
	if (isfinite(v))
		fprintf(f, fmt, v);
	else if (isinf(v))
		fprintf(f, "inf");
	else
		fprintf(f, "n/a");
}

static const char *dtype_of(const struct report *r, int i)
{
	const struct scale_point *p = &r->scales->points[i];
	return qcal_dtype_name(p->quantized ? p->dtype : QCAL_DTYPE_FLOAT);
}

/* ---------- Markdown ---------- */

enum qcal_status report_write_markdown(const struct report *r, const char *path,
				       struct qcal_err *err)
{
	struct qcal_afile af;
	enum qcal_status st = qcal_afile_open(&af, path, err);
	const struct qp_table *t = r->scales->table;
	const struct metrics *m = &r->overall;
	int worst[20], nworst;
	FILE *f;

	if (st != QCAL_OK)
		return st;
	f = af.fp;
	fprintf(f, "# qcal report\n\n");
	fprintf(f, "- model: `%s`\n- scales: `%s` (config `%s`)\n- data: `%s` (%lld images)\n\n",
		r->model_file ? r->model_file : "?", r->scales_file ? r->scales_file : "?",
		r->config_name ? r->config_name : "?", r->data ? r->data : "?", (long long)m->images);
	fprintf(f, "## Accuracy\n\n| | float | quantized |\n|---|---|---|\n");
	fprintf(f, "| top-1 | ");
	pct(f, metrics_float_top1(m));
	fprintf(f, " | ");
	pct(f, metrics_top1(m));
	fprintf(f, " |\n| top-5 | ");
	pct(f, m->labelled && m->has_float ? (double)m->float_top5 / m->labelled : NAN);
	fprintf(f, " | ");
	pct(f, metrics_top5(m));
	fprintf(f, " |\n\nArgmax agreement with float: ");
	pct(f, metrics_agreement(m));
	fprintf(f, "; logit SQNR: ");
	dbl(f, "%.2f dB", metrics_sqnr_db(m));
	fprintf(f, "; KL(float || quantized): ");
	dbl(f, "%.3g", metrics_mean_kl(m));
	fprintf(f, ".\n\n");

	nworst = report_worst_points(r, worst, 20);
	fprintf(f, "## Worst points (upstream SQNR, %lld images)\n\n", (long long)r->analysis_images);
	fprintf(f, "| point | kind | dtype | SQNR dB | alone dB | cosine | clipped |\n|---|---|---|---|---|---|---|\n");
	for (int k = 0; k < nworst; k++) {
		int i = worst[k];
		const struct point_error *e = &r->points[i];
		fprintf(f, "| `%s` | %s | %s | ", t->points[i].name, qp_kind_name(t->points[i].kind),
			dtype_of(r, i));
		dbl(f, "%.2f", point_error_sqnr_db(e));
		fprintf(f, " | ");
		dbl(f, "%.2f", point_error_sqnr_alone_db(e));
		fprintf(f, " | ");
		dbl(f, "%.5f", point_error_cosine(e));
		fprintf(f, " | ");
		dbl(f, "%.2e", point_error_clipped_fraction(e));
		fprintf(f, " |\n");
	}
	if (r->num_groups) {
		fprintf(f, "\n## Sensitivity (%lld images)\n\n", (long long)r->sensitivity_images);
		fprintf(f, "Each group quantized alone (everything else float), and everything but the group quantized.\n\n");
		fprintf(f, "| group | by | points | top-1 only | agreement only | logit SQNR only | top-1 all-but | agreement all-but |\n|---|---|---|---|---|---|---|---|\n");
		for (int g = 0; g < r->num_groups; g++) {
			const struct report_group *gr = &r->groups[g];
			fprintf(f, "| %s | %s | %d | ", gr->name, gr->by, gr->size);
			pct(f, metrics_top1(&gr->only));
			fprintf(f, " | ");
			pct(f, metrics_agreement(&gr->only));
			fprintf(f, " | ");
			dbl(f, "%.2f", metrics_sqnr_db(&gr->only));
			fprintf(f, " | ");
			pct(f, metrics_top1(&gr->without));
			fprintf(f, " | ");
			pct(f, metrics_agreement(&gr->without));
			fprintf(f, " |\n");
		}
	}
	if (r->auto_precision) {
		fprintf(f, "\n## Auto precision (max drop %.2f points)\n\n", r->max_drop);
		for (int i = 0; i < r->num_promoted; i++)
			fprintf(f, "%d. promoted to int16: %s\n", i + 1, r->promoted[i]);
		fprintf(f, "\nResult: top-1 ");
		pct(f, metrics_top1(&r->after_promotion));
		fprintf(f, ", agreement ");
		pct(f, metrics_agreement(&r->after_promotion));
		fprintf(f, "; config written to `%s`.\n", r->promoted_config ? r->promoted_config : "?");
	}
	return qcal_afile_commit(&af, err);
}

/* ---------- HTML ---------- */

static void html_escape(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		default: fputc(*s, f);
		}
	}
}

static const char *kind_color(enum qp_kind k)
{
	switch (k) {
	case QP_KIND_LN_MEAN: case QP_KIND_LN_CENTERED: case QP_KIND_LN_SQUARE:
	case QP_KIND_LN_VAR: case QP_KIND_LN_RSTD: case QP_KIND_LN_NORMALIZED:
	case QP_KIND_LN_OUT:
		return "#4e79a7";
	case QP_KIND_SOFTMAX_SUB_MAX: case QP_KIND_SOFTMAX_EXP: case QP_KIND_SOFTMAX_SUM:
	case QP_KIND_SOFTMAX_RECIP: case QP_KIND_SOFTMAX_OUT:
		return "#e15759";
	case QP_KIND_ATTN_Q: case QP_KIND_ATTN_K: case QP_KIND_ATTN_V: case QP_KIND_ATTN_Q_SCALED:
	case QP_KIND_ATTN_QK: case QP_KIND_ATTN_LOGITS: case QP_KIND_ATTN_AV:
		return "#f28e2b";
	case QP_KIND_REL_POS_BIAS:
		return "#b07aa1";
	case QP_KIND_GELU:
		return "#59a14f";
	case QP_KIND_RESIDUAL_ADD:
		return "#76b7b2";
	case QP_KIND_WEIGHT:
		return "#9c755f";
	default:
		return "#79706e";
	}
}

/* One bar per measured point in network order; height = upstream SQNR. */
static void svg_sqnr_bars(FILE *f, const struct report *r)
{
	const struct qp_table *t = r->scales->table;
	int n = 0;
	double top = 10;

	for (int i = 0; i < t->count; i++)
		if (r->points[i].measured && r->scales->points[i].quantized) {
			double s = point_error_sqnr_db(&r->points[i]);
			n++;
			if (isfinite(s) && s > top)
				top = s;
		}
	top = ceil(top / 10) * 10;
	int W = 1100, H = 320, left = 50, bottom = 40, plot_w = W - left - 10, plot_h = H - bottom - 20;
	double bw = n ? (double)plot_w / n : plot_w;
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" role=\"img\" aria-label=\"per-point SQNR\">\n", W, H);
	fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#fff\"/>\n", W, H);
	for (int k = 0; k <= 4; k++) {
		double v = top * k / 4, y = 20 + plot_h - plot_h * k / 4.0;
		fprintf(f, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			   "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.0f</text>\n",
			left, W - 10, y, y, left - 4, y + 4, v);
	}
	fprintf(f, "<text x=\"12\" y=\"%d\" font-size=\"12\" transform=\"rotate(-90 12 %d)\" text-anchor=\"middle\">SQNR (dB)</text>\n",
		20 + plot_h / 2, 20 + plot_h / 2);
	int k = 0;
	for (int i = 0; i < t->count; i++) {
		if (!r->points[i].measured || !r->scales->points[i].quantized)
			continue;
		double s = point_error_sqnr_db(&r->points[i]);
		double v = isfinite(s) ? fmax(0, fmin(s, top)) : top;
		double h = plot_h * v / top;
		fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"%s\"><title>",
			left + k * bw, 20 + plot_h - h, bw > 1.5 ? bw - 0.5 : bw, h,
			kind_color(t->points[i].kind));
		html_escape(f, t->points[i].name);
		fprintf(f, " (%s, %s): %.2f dB</title></rect>\n", qp_kind_name(t->points[i].kind),
			dtype_of(r, i), s);
		k++;
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">points in network order (input to logits)</text>\n",
		left + plot_w / 2, H - 22);
	static const struct { const char *label; enum qp_kind kind; } legend[] = {
		{ "LayerNorm", QP_KIND_LN_MEAN }, { "softmax", QP_KIND_SOFTMAX_EXP },
		{ "attention", QP_KIND_ATTN_QK }, { "rel. pos. bias", QP_KIND_REL_POS_BIAS },
		{ "GELU", QP_KIND_GELU }, { "residual add", QP_KIND_RESIDUAL_ADD },
		{ "weight", QP_KIND_WEIGHT }, { "other", QP_KIND_LINEAR },
	};
	for (size_t l = 0; l < sizeof(legend) / sizeof(legend[0]); l++)
		fprintf(f, "<rect x=\"%zu\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>"
			   "<text x=\"%zu\" y=\"%d\" font-size=\"11\">%s</text>\n",
			left + l * 120, H - 12, kind_color(legend[l].kind), left + l * 120 + 14, H - 3,
			legend[l].label);
	fprintf(f, "</svg>\n");
}

/* Histogram of the float values at point i (log counts) with the clip range. */
static void svg_histogram(FILE *f, const struct report *r, int i)
{
	const struct point_error *e = &r->points[i];
	const struct scale_point *sp = &r->scales->points[i];
	int W = 360, H = 200, left = 40, plot_w = W - left - 10, plot_h = H - 60;
	double peak = 1;

	for (int b = 0; b < ANALYSIS_HIST_BINS; b++)
		peak = fmax(peak, (double)e->hist[b]);
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\">\n", W, H);
	fprintf(f, "<rect width=\"%d\" height=\"%d\" fill=\"#fff\" stroke=\"#ccc\"/>\n", W, H);
	fprintf(f, "<text x=\"6\" y=\"14\" font-size=\"11\">");
	html_escape(f, r->scales->table->points[i].name);
	fprintf(f, "</text>\n");
	double bw = (double)plot_w / ANALYSIS_HIST_BINS;
	for (int b = 0; b < ANALYSIS_HIST_BINS; b++) {
		if (!e->hist[b])
			continue;
		double h = plot_h * log1p((double)e->hist[b]) / log1p(peak);
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#4e79a7\"/>\n",
			left + b * bw, 24 + plot_h - h, bw, h);
	}
	double span = e->hist_hi - e->hist_lo;
	if (sp->quantized && sp->channels == 1 && span > 0) {
		double lo = (sp->qmin - sp->zero_points[0]) * (double)sp->scales[0];
		double hi = (sp->qmax - sp->zero_points[0]) * (double)sp->scales[0];
		double xs[2] = { lo, hi };
		for (int k = 0; k < 2; k++) {
			double x = left + plot_w * (xs[k] - e->hist_lo) / span;
			if (x < left || x > left + plot_w)
				continue;
			fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"22\" y2=\"%d\" stroke=\"#e15759\" stroke-width=\"2\" stroke-dasharray=\"4 2\"/>\n",
				x, x, 24 + plot_h);
		}
	}
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\">%.3g</text>", left, H - 22, e->hist_lo);
	fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" text-anchor=\"end\">%.3g</text>\n",
		W - 10, H - 22, e->hist_hi);
	fprintf(f, "<text x=\"6\" y=\"%d\" font-size=\"10\">%s, SQNR %.1f dB, clipped %.2g%%; dashed: clip range</text>\n",
		H - 6, dtype_of(r, i), point_error_sqnr_db(e), 100 * point_error_clipped_fraction(e));
	fprintf(f, "</svg>\n");
}

static void td_pct(FILE *f, double v)
{
	fprintf(f, "<td>");
	pct(f, v);
	fprintf(f, "</td>");
}

static void td_dbl(FILE *f, const char *fmt, double v)
{
	fprintf(f, "<td>");
	dbl(f, fmt, v);
	fprintf(f, "</td>");
}

enum qcal_status report_write_html(const struct report *r, const char *path,
				   struct qcal_err *err)
{
	struct qcal_afile af;
	enum qcal_status st = qcal_afile_open(&af, path, err);
	const struct qp_table *t = r->scales->table;
	const struct metrics *m = &r->overall;
	int worst[24], nworst;
	FILE *f;

	if (st != QCAL_OK)
		return st;
	f = af.fp;
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
		   "<title>qcal report</title>\n<style>\n"
		   "body{font-family:sans-serif;margin:24px;color:#222;max-width:1160px}\n"
		   "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}\n"
		   "td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}code{font-size:12px}\n"
		   ".hists{display:flex;flex-wrap:wrap;gap:8px}.big{font-size:28px;font-weight:bold}\n"
		   ".cards{display:flex;gap:24px;margin:12px 0}.card{border:1px solid #ddd;padding:10px 16px;border-radius:6px}\n"
		   "</style></head><body>\n");
	fprintf(f, "<h1>qcal quantization report</h1>\n<p>model <code>");
	html_escape(f, r->model_file);
	fprintf(f, "</code>, scales <code>");
	html_escape(f, r->scales_file);
	fprintf(f, "</code> (config <b>");
	html_escape(f, r->config_name);
	fprintf(f, "</b>), data <code>");
	html_escape(f, r->data);
	fprintf(f, "</code>, %lld images.</p>\n", (long long)m->images);
	fprintf(f, "<div class=\"cards\"><div class=\"card\">float top-1<div class=\"big\">");
	pct(f, metrics_float_top1(m));
	fprintf(f, "</div></div><div class=\"card\">quantized top-1<div class=\"big\">");
	pct(f, metrics_top1(m));
	fprintf(f, "</div></div><div class=\"card\">agreement with float<div class=\"big\">");
	pct(f, metrics_agreement(m));
	fprintf(f, "</div></div><div class=\"card\">logit SQNR<div class=\"big\">");
	dbl(f, "%.1f dB", metrics_sqnr_db(m));
	fprintf(f, "</div></div></div>\n");
	fprintf(f, "<h2>Accuracy</h2>\n<table><tr><th></th><th>float</th><th>quantized</th></tr>\n<tr><td>top-1</td>");
	td_pct(f, metrics_float_top1(m));
	td_pct(f, metrics_top1(m));
	fprintf(f, "</tr>\n<tr><td>top-5</td>");
	td_pct(f, m->labelled && m->has_float ? (double)m->float_top5 / m->labelled : NAN);
	td_pct(f, metrics_top5(m));
	fprintf(f, "</tr>\n<tr><td>KL(float || quantized)</td><td></td>");
	td_dbl(f, "%.3g", metrics_mean_kl(m));
	fprintf(f, "</tr></table>\n");

	fprintf(f, "<h2>Per-point SQNR</h2>\n<p>SQNR of each fake-quantized tensor against the float model's tensor, with everything upstream quantized (%lld images). Hover a bar for the point.</p>\n",
		(long long)r->analysis_images);
	svg_sqnr_bars(f, r);

	nworst = report_worst_points(r, worst, 24);
	fprintf(f, "<h2>Worst points</h2>\n<div class=\"hists\">\n");
	for (int k = 0; k < nworst && k < 6; k++)
		svg_histogram(f, r, worst[k]);
	fprintf(f, "</div>\n<table><tr><th>point</th><th>kind</th><th>dtype</th><th>scale</th><th>SQNR dB</th><th>alone dB</th><th>cosine</th><th>cosine alone</th><th>clipped</th></tr>\n");
	for (int k = 0; k < nworst; k++) {
		int i = worst[k];
		const struct point_error *e = &r->points[i];
		fprintf(f, "<tr><td><code>");
		html_escape(f, t->points[i].name);
		fprintf(f, "</code></td><td>%s</td><td>%s</td>", qp_kind_name(t->points[i].kind), dtype_of(r, i));
		td_dbl(f, "%.4g", r->scales->points[i].scales[0]);
		td_dbl(f, "%.2f", point_error_sqnr_db(e));
		td_dbl(f, "%.2f", point_error_sqnr_alone_db(e));
		td_dbl(f, "%.5f", point_error_cosine(e));
		td_dbl(f, "%.5f", point_error_cosine_alone(e));
		td_dbl(f, "%.2e", point_error_clipped_fraction(e));
		fprintf(f, "</tr>\n");
	}
	fprintf(f, "</table>\n");
	if (r->num_groups) {
		fprintf(f, "<h2>Sensitivity</h2>\n<p>Each group quantized alone (the rest float) and everything but the group quantized, on %lld images.</p>\n",
			(long long)r->sensitivity_images);
		fprintf(f, "<table><tr><th>group</th><th>by</th><th>points</th><th>top-1 only</th><th>agreement only</th><th>logit SQNR only</th><th>top-1 all-but</th><th>agreement all-but</th><th>logit SQNR all-but</th></tr>\n");
		for (int g = 0; g < r->num_groups; g++) {
			const struct report_group *gr = &r->groups[g];
			fprintf(f, "<tr><td>");
			html_escape(f, gr->name);
			fprintf(f, "</td><td>%s</td><td>%d</td>", gr->by, gr->size);
			td_pct(f, metrics_top1(&gr->only));
			td_pct(f, metrics_agreement(&gr->only));
			td_dbl(f, "%.2f", metrics_sqnr_db(&gr->only));
			td_pct(f, metrics_top1(&gr->without));
			td_pct(f, metrics_agreement(&gr->without));
			td_dbl(f, "%.2f", metrics_sqnr_db(&gr->without));
			fprintf(f, "</tr>\n");
		}
		fprintf(f, "</table>\n");
	}
	if (r->auto_precision) {
		fprintf(f, "<h2>Auto precision</h2>\n<p>Groups promoted to int16, most sensitive first, until the top-1 drop is at most %.2f points:</p><ol>\n",
			r->max_drop);
		for (int i = 0; i < r->num_promoted; i++) {
			fprintf(f, "<li>");
			html_escape(f, r->promoted[i]);
			fprintf(f, "</li>\n");
		}
		fprintf(f, "</ol><p>Result: top-1 ");
		pct(f, metrics_top1(&r->after_promotion));
		fprintf(f, ", agreement ");
		pct(f, metrics_agreement(&r->after_promotion));
		fprintf(f, "; config <code>");
		html_escape(f, r->promoted_config);
		fprintf(f, "</code>.</p>\n");
	}
	fprintf(f, "<p style=\"color:#888;font-size:12px\">generated by qcal report</p>\n</body></html>\n");
	return qcal_afile_commit(&af, err);
}
