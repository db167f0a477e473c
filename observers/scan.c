/*
 * Range scans; see scan.h for why the lanes are GNU C vectors.
 */
#include "observers/scan.h"

/* Lane counters are 32-bit: 16 lanes * 2^27 elements stay clear of 2^32. */
#define SCAN_CHUNK ((size_t)1 << 31)

struct fast_scan {
	float min, max;      /* NaN-ignoring, Inf included */
	uint64_t nanlike;    /* NaN or masked */
	uint64_t kept;
};

static void fast_chunk(const float *x, const uint8_t *keep, size_t n,
		       struct fast_scan *fs)
{
	struct scan_lanes l;
	float mn, mx;
	uint64_t bad, kept;
	size_t i = 0;

	scan_lanes_init(&l);
	if (keep) {
		for (; i + SCAN_LANES <= n; i += SCAN_LANES)
			scan_lanes_add_masked(&l, x + i, keep + i);
	} else {
		for (; i + SCAN_LANES <= n; i += SCAN_LANES)
			scan_lanes_add(&l, x + i);
	}
	for (; i < n; i++) {
		int k = !keep || keep[i];

		scan_lanes_add_one(&l, k ? x[i] : NAN, k);
	}
	scan_lanes_fold(&l, &mn, &mx, &bad, &kept);
	fs->min = mn < fs->min ? mn : fs->min;
	fs->max = mx > fs->max ? mx : fs->max;
	fs->nanlike += bad;
	/* without a mask the lanes only counted the tail as kept */
	fs->kept += keep ? kept : n;
}

static void slow_scan(const float *x, const uint8_t *keep, size_t n,
		      struct scan_stats *st)
{
	for (size_t i = 0; i < n; i++) {
		float v = x[i];

		if (keep && !keep[i])
			continue;
		if (isnan(v)) {
			st->nan++;
		} else if (isinf(v)) {
			st->inf++;
		} else {
			st->finite++;
			st->min = v < st->min ? v : st->min;
			st->max = v > st->max ? v : st->max;
		}
	}
}

void scan_stats_init(struct scan_stats *st)
{
	st->min = INFINITY;
	st->max = -INFINITY;
	st->finite = st->nan = st->inf = 0;
}

void scan_range(const float *x, const uint8_t *keep, size_t n,
		struct scan_stats *st)
{
	struct fast_scan fs = { INFINITY, -INFINITY, 0, 0 };

	scan_stats_init(st);
	for (size_t off = 0; off < n; off += SCAN_CHUNK) {
		size_t m = n - off < SCAN_CHUNK ? n - off : SCAN_CHUNK;
		fast_chunk(x + off, keep ? keep + off : NULL, m, &fs);
	}
	if (fs.min == -INFINITY || fs.max == INFINITY) {
		/* an infinite extreme: recount with a finiteness filter */
		slow_scan(x, keep, n, st);
		return;
	}
	st->min = fs.min;
	st->max = fs.max;
	st->nan = fs.nanlike - (n - fs.kept);
	st->finite = fs.kept - st->nan;
}

/* a thread is worth its fork/join beyond this many elements */
#define SCAN_MIN_PER_THREAD ((size_t)1 << 15)
#define SCAN_MAX_THREADS 64

void scan_range_mt(const float *x, const uint8_t *keep, size_t n, int threads,
		   struct scan_stats *st)
{
	struct scan_stats part[SCAN_MAX_THREADS];
	int T = threads < 1 ? 1 : threads > SCAN_MAX_THREADS ? SCAN_MAX_THREADS : threads;

	while (T > 1 && n / (size_t)T < SCAN_MIN_PER_THREAD)
		T--;
	if (T == 1) {
		scan_range(x, keep, n, st);
		return;
	}
	#pragma omp parallel for num_threads(T) schedule(static, 1)
	for (int t = 0; t < T; t++) {
		size_t lo = n * (size_t)t / (size_t)T, hi = n * (size_t)(t + 1) / (size_t)T;

		scan_range(x + lo, keep ? keep + lo : NULL, hi - lo, &part[t]);
	}
	*st = part[0];
	for (int t = 1; t < T; t++)
		scan_stats_merge(st, &part[t]);
}

void scan_stats_merge(struct scan_stats *a, const struct scan_stats *b)
{
	a->min = b->min < a->min ? b->min : a->min;
	a->max = b->max > a->max ? b->max : a->max;
	a->finite += b->finite;
	a->nan += b->nan;
	a->inf += b->inf;
}
