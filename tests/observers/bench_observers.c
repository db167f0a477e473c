/*
 * Observer benchmark (a program, not a test): what one update costs.
 *
 *   bench_observers [--repeats R]
 *       ns/element of observer_update for every kind on 1M- and 16M-element
 *       float32 tensors (a normal bulk, and softmax-like values piled up
 *       near 0), steady state (the range already seen), median of R runs;
 *       plus a plain read of the tensor for scale, and compute_qparams.
 *
 *   bench_observers --swin [--kind K] [--batch B] [--threads T] [--repeats R]
 *       a full-size Swin-T (random weights): the float forward, the
 *       decomposed forward that materialises every quantization point, and
 *       the same with an observer of kind K on every activation point,
 *       updated in the forward's callback (observer_update_parallel with T
 *       threads) - the cost a calibration pays per image, as a multiple of
 *       the float forward.
 *
 * Timings on a shared 2-core machine are noisy: medians, and run it twice.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/rng.h"
#include "model/qpoint.h"
#include "model/swin_forward.h"
#include "model/swin_model.h"
#include "observers/observer.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *t, int n)
{
	qsort(t, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

static void die(const char *what, const struct qcal_err *err)
{
	fprintf(stderr, "bench_observers: %s: %s\n", what, err ? err->msg : "failed");
	exit(1);
}

static float sink;

/* A plain read of x: the floor any single-pass observer can reach. */
static double time_read(const float *x, size_t n)
{
	double t0 = qcal_now();
	float acc[16] = { 0 };

	for (size_t i = 0; i + 16 <= n; i += 16)
		for (int j = 0; j < 16; j++)
			acc[j] += x[i + j];
	for (int j = 0; j < 16; j++)
		sink += acc[j];
	return qcal_now() - t0;
}

static void bench_kinds(int repeats)
{
	const size_t sizes[] = { (size_t)1 << 20, (size_t)1 << 24 };
	const char *dists[] = { "normal", "softmax-like" };
	struct qcal_err err;

	printf("observer_update, steady state, median of %d (ns/element)\n", repeats);
	printf("%-20s %-13s %10s %10s %14s\n", "kind", "data", "1M", "16M", "qparams (ms)");
	for (int d = 0; d < 2; d++) {
		float *x[2];
		double *t = malloc((size_t)repeats * sizeof(double));
		struct qcal_rng rng;

		qcal_rng_seed(&rng, 42);
		for (int s = 0; s < 2; s++) {
			x[s] = malloc(sizes[s] * sizeof(float));
			if (!x[s] || !t)
				die("allocation", NULL);
			for (size_t i = 0; i < sizes[s]; i++) {
				float v = qcal_rng_normal(&rng);

				/* softmax-like: most mass in the lowest bins */
				x[s][i] = d ? expf(3.0f * v - 9.0f) : v;
			}
		}
		{
			double ns[2];

			for (int s = 0; s < 2; s++) {
				for (int r = 0; r < repeats; r++)
					t[r] = time_read(x[s], sizes[s]);
				ns[s] = median(t, repeats) / (double)sizes[s] * 1e9;
			}
			printf("%-20s %-13s %10.3f %10.3f %14s\n", "(plain read)", dists[d], ns[0],
			       ns[1], "-");
		}
		for (int k = 0; k < OBSERVER_KIND_COUNT; k++) {
			struct observer_options opt;
			double ns[2], qms = 0;

			observer_options_init(&opt, (enum observer_kind)k, QCAL_DTYPE_INT8, true);
			if (k == OBSERVER_PER_CHANNEL_MINMAX)
				opt.channels = 256;
			for (int s = 0; s < 2; s++) {
				struct observer *o;
				struct observer_qparams q;

				if (observer_create(&o, &opt, &err) != QCAL_OK)
					die("observer_create", &err);
				/* first update sets the range; time the steady state */
				if (observer_update(o, x[s], sizes[s], &err) != QCAL_OK)
					die("observer_update", &err);
				for (int r = 0; r < repeats; r++) {
					double t0 = qcal_now();

					if (observer_update(o, x[s], sizes[s], &err) != QCAL_OK)
						die("observer_update", &err);
					t[r] = qcal_now() - t0;
				}
				ns[s] = median(t, repeats) / (double)sizes[s] * 1e9;
				if (s == 1) {
					double t0 = qcal_now();

					if (observer_compute_qparams(o, &q, &err) != QCAL_OK)
						die("observer_compute_qparams", &err);
					qms = (qcal_now() - t0) * 1e3;
					observer_qparams_free(&q);
				}
				observer_free(o);
			}
			printf("%-20s %-13s %10.3f %10.3f %14.2f\n",
			       observer_kind_name((enum observer_kind)k), dists[d], ns[0], ns[1], qms);
		}
		free(x[0]);
		free(x[1]);
		free(t);
	}
}

struct swin_obs {
	struct observer **obs;  /* [points], NULL for weights */
	int threads;            /* observer_update_parallel's */
	double seconds;         /* spent in observer updates */
	size_t elements;        /* observed elements in one forward */
	enum qcal_status status;
	struct qcal_err err;
};

static void observe_cb(void *user, int point, const float *x, size_t n,
		       const uint8_t *keep)
{
	struct swin_obs *s = user;
	enum qcal_status st;

	s->elements += n;
	if (!s->obs || !s->obs[point] || s->status != QCAL_OK)
		return;
	{
		double t0 = qcal_now();

		st = observer_update_parallel(s->obs[point], x, keep, n, s->threads, &s->err);
		s->seconds += qcal_now() - t0;
	}
	if (st != QCAL_OK)
		s->status = st;
}

static double time_forward(struct swin_plan *plan, const struct swin_model *model,
			   const struct qp_ctx *ctx, const float *input, int B,
			   int repeats)
{
	double *t = malloc((size_t)repeats * sizeof(double)), m;
	struct qcal_err err;

	for (int r = -1; r < repeats; r++) { /* one warm-up */
		double t0 = qcal_now();

		if (swin_forward(plan, model, NULL, ctx, input, B, &err) != QCAL_OK)
			die("swin_forward", &err);
		if (r >= 0)
			t[r] = qcal_now() - t0;
	}
	m = median(t, repeats);
	free(t);
	return m / B;
}

static void bench_swin(const char *kind_name, int B, int repeats, int threads)
{
	struct swin_config cfg;
	struct swin_model model;
	struct swin_plan fplan, dplan;
	struct qp_table table;
	struct qcal_rng rng;
	struct qcal_err err;
	enum observer_kind kind;
	struct swin_obs so = { .threads = threads };
	struct qp_ctx ctx;
	double t_float, t_decomposed, t_observed;
	size_t n, per_image;
	float *input;

	if (observer_kind_parse(kind_name, &kind) != 0 || kind == OBSERVER_PER_CHANNEL_MINMAX)
		die("--kind", &(struct qcal_err){ .msg = "expected minmax, moving_average, percentile, entropy or mse" });
	swin_config_swin_t(&cfg);
	if (swin_model_init(&model, &cfg, &err) != QCAL_OK)
		die("swin_model_init", &err);
	qcal_rng_seed(&rng, 0);
	swin_model_randomize(&model, &rng);
	n = (size_t)B * cfg.in_chans * cfg.img_size * cfg.img_size;
	input = malloc(n * sizeof(float));
	for (size_t i = 0; i < n; i++)
		input[i] = qcal_rng_normal(&rng);
	if (swin_plan_init(&fplan, &cfg, B, 0, 0, NULL, &err) != QCAL_OK ||
	    swin_plan_init(&dplan, &cfg, B, SWIN_PLAN_DECOMPOSED, 0, NULL, &err) != QCAL_OK)
		die("swin_plan_init", &err);
	if (qp_table_init(&table, &cfg, &model.table, &err) != QCAL_OK)
		die("qp_table_init", &err);
	ctx = (struct qp_ctx){ .mode = QP_MODE_OBSERVE, .table = &table,
			       .observe = observe_cb, .observe_user = &so };

	t_float = time_forward(&fplan, &model, NULL, input, B, repeats);
	t_decomposed = time_forward(&dplan, &model, &ctx, input, B, repeats);
	per_image = so.elements / ((size_t)(repeats + 1) * (size_t)B);
	so.obs = calloc((size_t)table.count, sizeof(*so.obs));
	for (int i = 0; i < table.count; i++) {
		struct observer_options opt;

		if (table.points[i].role == QP_ROLE_WEIGHT)
			continue;
		observer_options_init(&opt, kind, QCAL_DTYPE_INT8, true);
		if (observer_create(&so.obs[i], &opt, &err) != QCAL_OK)
			die("observer_create", &err);
	}
	so.seconds = 0;
	t_observed = time_forward(&dplan, &model, &ctx, input, B, repeats);
	if (so.status != QCAL_OK)
		die("observer_update", &so.err);
	printf("swin-t batch %d, %d threads, median of %d, ms/image:\n", B, dplan.threads, repeats);
	printf("  float forward                         %8.1f\n", t_float * 1e3);
	printf("  decomposed forward, no observers      %8.1f  (%.2fx)\n", t_decomposed * 1e3,
	       t_decomposed / t_float);
	printf("  decomposed + %-14s observers %8.1f  (%.2fx)\n", kind_name,
	       t_observed * 1e3, t_observed / t_float);
	/* the callback's own clock: mean over the timed runs and the warm-up */
	printf("  in observer updates                   %8.1f  (%.1f M elements/image, %.2f ns/element, %d thread%s)\n",
	       so.seconds / (repeats + 1) / B * 1e3, (double)per_image / 1e6,
	       so.seconds / (repeats + 1) / B / (double)per_image * 1e9, threads,
	       threads > 1 ? "s" : "");
	for (int i = 0; i < table.count; i++)
		observer_free(so.obs[i]);
	free(so.obs);
	qp_table_free(&table);
	swin_plan_free(&fplan);
	swin_plan_free(&dplan);
	swin_model_free(&model);
	free(input);
}

int main(int argc, char **argv)
{
	const char *kind = "mse";
	int repeats = 0, batch = 1, swin = 0, threads = 1;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--swin"))
			swin = 1;
		else if (!strcmp(argv[i], "--kind") && i + 1 < argc)
			kind = argv[++i];
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--repeats") && i + 1 < argc)
			repeats = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: bench_observers [--repeats R] | --swin [--kind K] [--batch B] [--threads T] [--repeats R]\n");
			return 2;
		}
	}
	if (swin)
		bench_swin(kind, batch > 0 ? batch : 1, repeats > 0 ? repeats : 5,
			   threads > 0 ? threads : 1);
	else
		bench_kinds(repeats > 0 ? repeats : 9);
	return 0;
}
