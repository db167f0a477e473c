/*
 * Rendering of a qcal report for people: Markdown (for review threads and
 * CI logs) and a self-contained HTML page with inline SVG charts (per-point
 * SQNR, histograms of the worst points with their clip range, accuracy and
 * sensitivity tables).  The numbers come from calib/report.h.
 */
#ifndef QCAL_TOOLS_REPORT_RENDER_H
#define QCAL_TOOLS_REPORT_RENDER_H

#include "calib/report.h"
#include "core/status.h"

enum qcal_status report_write_markdown(const struct report *r, const char *path,
				       struct qcal_err *err);
enum qcal_status report_write_html(const struct report *r, const char *path,
				   struct qcal_err *err);

#endif
