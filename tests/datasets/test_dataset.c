/*
 * Image sets: ImageFolder order and labels (checked against torchvision on
 * a nested tree once, hard-coded here), list files, unlabelled folders,
 * every open error with its message, the class-count check, --limit, the
 * seeded class-balanced --sample (balance, determinism, classes too small
 * for their share) and per-epoch shuffles.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/dataset.h"
#include "tests/common/test_util.h"

static void touch(const char *dir, const char *rel)
{
	char path[1024], sub[1024];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	/* Create parent folders. */
	for (char *p = strchr(path + strlen(dir) + 1, '/'); p; p = strchr(p + 1, '/')) {
		memcpy(sub, path, (size_t)(p - path));
		sub[p - path] = '\0';
		mkdir(sub, 0755);
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("x", f);
	fclose(f);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char *rel_path(const struct dataset *ds, size_t i)
{
	return ds->items[i].path + strlen(ds->source) + 1;
}

static void test_sample_folder(void **state)
{
	char path[1024];
	struct dataset ds;
	struct qcal_err err;
	size_t counts[10];

	(void)state;
	test_source_path(path, sizeof(path), "data/cifar10-sample");
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_OK);
	assert_int_equal(ds.layout, DATASET_CLASS_FOLDERS);
	assert_int_equal(ds.count, 300);
	assert_int_equal(ds.num_classes, 10);
	assert_string_equal(ds.class_names[0], "airplane");
	assert_string_equal(ds.class_names[9], "truck");
	assert_string_equal(rel_path(&ds, 0), "airplane/0000.jpg");
	assert_string_equal(rel_path(&ds, 29), "airplane/0029.jpg");
	assert_string_equal(rel_path(&ds, 30), "automobile/0000.jpg");
	assert_int_equal(ds.items[30].label, 1);
	assert_string_equal(rel_path(&ds, 299), "truck/0029.jpg");
	assert_int_equal(ds.items[299].label, 9);
	dataset_class_counts(&ds, counts);
	for (int c = 0; c < 10; c++)
		assert_int_equal(counts[c], 30);
	assert_int_equal(dataset_check_classes(&ds, 10, &err), QCAL_OK);
	assert_int_equal(dataset_check_classes(&ds, 5, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "cifar10-sample"));
	assert_non_null(strstr(err.msg, "10 class folders"));
	assert_non_null(strstr(err.msg, "model has 5 classes"));
	dataset_free(&ds);
	dataset_free(&ds); /* idempotent */
	dataset_free(NULL);
}

/* The order torchvision 0.14's ImageFolder gives for this tree (verified
 * with it when the test was written): classes sorted, then sorted(os.walk)
 * directories by full path, files sorted by name inside each. */
static void test_imagefolder_order(void **state)
{
	static const char *const files[] = {
		"cat/x.jpg", "cat/a.PNG", "cat/B.jpeg", "cat/notes.txt", "cat/sub/z.jpg",
		"cat/sub/deeper/q.webp", "cat/sub-b/y.jpg", "cat/Sub/k.png", "dog/1.jpeg",
		"dog/10.jpg", "dog/2.jpg", "ant/.hidden.jpg",
	};
	static const char *const expect[] = {
		"ant/.hidden.jpg", "cat/B.jpeg", "cat/a.PNG", "cat/x.jpg", "cat/Sub/k.png",
		"cat/sub/z.jpg", "cat/sub-b/y.jpg", "cat/sub/deeper/q.webp", "dog/1.jpeg",
		"dog/10.jpg", "dog/2.jpg",
	};
	static const int labels[] = { 0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2 };
	char dir[512];
	struct dataset ds;
	struct qcal_err err;

	(void)state;
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		touch(dir, files[i]);
	assert_int_equal(dataset_open(&ds, dir, NULL, &err), QCAL_OK);
	assert_int_equal(ds.count, sizeof(expect) / sizeof(expect[0]));
	for (size_t i = 0; i < ds.count; i++) {
		assert_string_equal(rel_path(&ds, i), expect[i]);
		assert_int_equal(ds.items[i].label, labels[i]);
	}
	assert_string_equal(ds.class_names[1], "cat");
	dataset_free(&ds);

	/* A symlink back to an ancestor is refused, not followed forever. */
	char link[1024], target[1024];
	snprintf(link, sizeof(link), "%s/cat/sub/loop", dir);
	snprintf(target, sizeof(target), "%s/cat", dir);
	assert_int_equal(symlink(target, link), 0);
	assert_int_equal(dataset_open(&ds, dir, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, "folder loop"));
	assert_non_null(strstr(err.msg, "cat/sub/loop"));
	test_rmtree(dir);
}

static void test_list_file(void **state)
{
	char dir[512], list[1024], other[1024];
	struct dataset ds;
	struct dataset_options opt = { 0 };
	struct qcal_err err;

	(void)state;
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	touch(dir, "img/a.jpg");
	touch(dir, "img/with space/b 1.png");
	touch(dir, "img/c.JPEG");
	snprintf(list, sizeof(list), "%s/val.txt", dir);
	write_text(list, "# ImageNet-val style\n\nimg/a.jpg 3\r\n  img/with space/b 1.png\t0\n"
			 "img/c.JPEG 7\n");
	assert_int_equal(dataset_open(&ds, list, NULL, &err), QCAL_OK);
	assert_int_equal(ds.layout, DATASET_LIST);
	assert_int_equal(ds.count, 3);
	assert_int_equal(ds.num_classes, 8);
	assert_int_equal(ds.max_label_line, 5);
	snprintf(other, sizeof(other), "%s/img/with space/b 1.png", dir);
	assert_string_equal(ds.items[1].path, other);
	assert_int_equal(ds.items[0].label, 3);
	assert_int_equal(ds.items[1].label, 0);
	assert_int_equal(ds.items[2].label, 7);
	assert_null(ds.class_names);
	assert_int_equal(dataset_check_classes(&ds, 8, &err), QCAL_OK);
	assert_int_equal(dataset_check_classes(&ds, 7, &err), QCAL_ERANGE);
	assert_non_null(strstr(err.msg, "val.txt:5: label 7"));
	dataset_free(&ds);

	/* Paths relative to an explicit root. */
	snprintf(other, sizeof(other), "%s/img/list.txt", dir);
	write_text(other, "a.jpg 1\n");
	snprintf(list, sizeof(list), "%s/img", dir);
	opt.root = list;
	assert_int_equal(dataset_open(&ds, other, &opt, &err), QCAL_OK);
	assert_int_equal(ds.count, 1);
	dataset_free(&ds);
	opt.root = dir; /* a.jpg is not directly under dir */
	assert_int_equal(dataset_open(&ds, other, &opt, &err), QCAL_ENOENT);
	assert_non_null(strstr(err.msg, "list.txt:1:"));
	assert_non_null(strstr(err.msg, "a.jpg"));

	/* A list naming a missing file: list file, line and file named. */
	snprintf(list, sizeof(list), "%s/bad.txt", dir);
	write_text(list, "img/a.jpg 0\nimg/missing.jpg 1\n");
	assert_int_equal(dataset_open(&ds, list, NULL, &err), QCAL_ENOENT);
	assert_non_null(strstr(err.msg, "bad.txt:2:"));
	assert_non_null(strstr(err.msg, "img/missing.jpg"));
	/* Labels on some lines only. */
	write_text(list, "img/a.jpg 0\nimg/c.JPEG\n");
	assert_int_equal(dataset_open(&ds, list, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, "bad.txt:2:"));
	/* A negative label. */
	write_text(list, "img/a.jpg -2\n");
	assert_int_equal(dataset_open(&ds, list, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, "bad.txt:1: label '-2'"));
	/* Unlabelled lists are fine (calibration). */
	write_text(list, "img/a.jpg\nimg/c.JPEG\n");
	assert_int_equal(dataset_open(&ds, list, NULL, &err), QCAL_OK);
	assert_int_equal(ds.items[1].label, -1);
	assert_int_equal(ds.num_classes, 0);
	assert_int_equal(dataset_check_classes(&ds, 1, &err), QCAL_OK);
	dataset_free(&ds);
	/* Only comments. */
	write_text(list, "# nothing\n\n");
	assert_int_equal(dataset_open(&ds, list, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, "names no images"));
	test_rmtree(dir);
}

static void test_unlabelled_and_errors(void **state)
{
	char dir[512], path[1024];
	struct dataset ds;
	struct dataset_options opt = { .layout = DATASET_UNLABELLED };
	struct qcal_err err;

	(void)state;
	assert_non_null(test_tmpdir(dir, sizeof(dir)));
	/* Empty folder. */
	assert_int_equal(dataset_open(&ds, dir, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, dir));
	assert_non_null(strstr(err.msg, "no image files"));
	assert_int_equal(ds.count, 0);
	/* Flat folder of images: unlabelled. */
	touch(dir, "b.png");
	touch(dir, "a.jpg");
	touch(dir, "readme.txt");
	assert_int_equal(dataset_open(&ds, dir, NULL, &err), QCAL_OK);
	assert_int_equal(ds.layout, DATASET_UNLABELLED);
	assert_int_equal(ds.count, 2);
	assert_string_equal(rel_path(&ds, 0), "a.jpg");
	assert_int_equal(ds.items[0].label, -1);
	dataset_free(&ds);
	/* Images and subfolders together: ambiguous under auto... */
	touch(dir, "sub/c.jpg");
	assert_int_equal(dataset_open(&ds, dir, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, "both image files"));
	/* ...fine when the layout is explicit. */
	assert_int_equal(dataset_open(&ds, dir, &opt, &err), QCAL_OK);
	assert_int_equal(ds.count, 3);
	assert_string_equal(rel_path(&ds, 2), "sub/c.jpg");
	dataset_free(&ds);
	opt.layout = DATASET_CLASS_FOLDERS;
	assert_int_equal(dataset_open(&ds, dir, &opt, &err), QCAL_OK);
	assert_int_equal(ds.count, 1); /* top-level files ignored, as ImageFolder */
	dataset_free(&ds);
	/* An empty class folder (torchvision refuses it too). */
	touch(dir, "classes/full/a.jpg");
	snprintf(path, sizeof(path), "%s/classes/empty", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/classes", dir);
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_EFORMAT);
	assert_non_null(strstr(err.msg, "class folder 'empty' has no image files"));
	/* Missing path, and a list layout forced on a folder. */
	snprintf(path, sizeof(path), "%s/nope", dir);
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_ENOENT);
	assert_non_null(strstr(err.msg, "nope"));
	opt.layout = DATASET_LIST;
	assert_int_equal(dataset_open(&ds, dir, &opt, &err), QCAL_EINVAL);
	/* An unreadable class folder.  Root reads everything, so as root the
	 * check runs in a child that drops to user "nobody". */
	touch(dir, "locked/cls/a.jpg");
	touch(dir, "locked/other/b.jpg");
	chmod(dir, 0755);
	snprintf(path, sizeof(path), "%s/locked/cls", dir);
	chmod(path, 0);
	snprintf(path, sizeof(path), "%s/locked", dir);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
			_exit(2);
		enum qcal_status st = dataset_open(&ds, path, NULL, &err);
		_exit(st == QCAL_EIO && strstr(err.msg, "locked/cls: cannot read folder") ? 0 : 1);
	}
	int wstatus = 0;
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus));
	assert_int_equal(WEXITSTATUS(wstatus), 0);
	snprintf(path, sizeof(path), "%s/locked/cls", dir);
	chmod(path, 0755);
	test_rmtree(dir);
}

static void test_limit_and_sample(void **state)
{
	char path[1024];
	struct dataset ds, ds2;
	struct qcal_err err;
	size_t counts[10];
	int five = 0, four = 0;

	(void)state;
	test_source_path(path, sizeof(path), "data/cifar10-sample");
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_OK);
	assert_int_equal(dataset_open(&ds2, path, NULL, &err), QCAL_OK);
	/* 47 over 10 classes: seven classes get 5, three get 4. */
	assert_int_equal(dataset_sample(&ds, 47, 1, &err), QCAL_OK);
	assert_int_equal(dataset_sample(&ds2, 47, 1, &err), QCAL_OK);
	assert_int_equal(ds.count, 47);
	dataset_class_counts(&ds, counts);
	for (int c = 0; c < 10; c++) {
		five += counts[c] == 5;
		four += counts[c] == 4;
	}
	assert_int_equal(five, 7);
	assert_int_equal(four, 3);
	for (size_t i = 0; i < ds.count; i++) {
		assert_ptr_equal(ds.items[i].path, ds.items[i].path);
		assert_string_equal(ds.items[i].path, ds2.items[i].path); /* deterministic */
		if (i)
			assert_true(strcmp(ds.items[i - 1].path, ds.items[i].path) < 0); /* dataset order */
	}
	dataset_free(&ds2);
	/* Another seed picks other images. */
	assert_int_equal(dataset_open(&ds2, path, NULL, &err), QCAL_OK);
	assert_int_equal(dataset_sample(&ds2, 47, 2, &err), QCAL_OK);
	int same = 1;
	for (size_t i = 0; i < ds.count; i++)
		same &= !strcmp(ds.items[i].path, ds2.items[i].path);
	assert_false(same);
	dataset_free(&ds2);
	dataset_free(&ds);

	/* Classes too small for their share give it to the others:
	 * 30 airplanes, 30 automobiles, 5 birds; 30 wanted -> bird 5, 12/13. */
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_OK);
	dataset_limit(&ds, 65);
	assert_int_equal(ds.count, 65);
	assert_int_equal(dataset_sample(&ds, 30, 9, &err), QCAL_OK);
	dataset_class_counts(&ds, counts);
	assert_int_equal(counts[2], 5);
	assert_int_equal(counts[0] + counts[1], 25);
	assert_true((counts[0] == 12 && counts[1] == 13) || (counts[0] == 13 && counts[1] == 12));
	/* No-ops. */
	dataset_limit(&ds, 0);
	dataset_limit(&ds, 1000);
	assert_int_equal(dataset_sample(&ds, 0, 1, &err), QCAL_OK);
	assert_int_equal(ds.count, 30);
	/* Fewer than one per class: n random classes, one image each. */
	dataset_free(&ds);
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_OK);
	assert_int_equal(dataset_sample(&ds, 3, 5, &err), QCAL_OK);
	dataset_class_counts(&ds, counts);
	int ones = 0;
	for (int c = 0; c < 10; c++)
		ones += counts[c] == 1;
	assert_int_equal(ones, 3);
	dataset_free(&ds);
}

/* Why sampling exists: the first 1,000 training images are all airplanes. */
static void test_sample_cifar_train(void **state)
{
	char path[1024];
	struct dataset ds;
	struct qcal_err err;
	size_t counts[10];

	(void)state;
	test_shared_path(path, sizeof(path), "data/cifar10/train");
	assert_int_equal(dataset_open(&ds, path, NULL, &err), QCAL_OK);
	assert_int_equal(ds.count, 50000);
	assert_int_equal(dataset_check_classes(&ds, 10, &err), QCAL_OK);
	assert_int_equal(ds.items[999].label, 0);
	assert_int_equal(dataset_sample(&ds, 1000, 0, &err), QCAL_OK);
	dataset_class_counts(&ds, counts);
	for (int c = 0; c < 10; c++)
		assert_int_equal(counts[c], 100);
	printf("  --sample 1000 of 50000: 100 per class; first pick %s\n", ds.items[0].path);
	dataset_free(&ds);
}

static void test_epoch_order(void **state)
{
	size_t a[1000], b[1000], c[1000];
	unsigned char seen[1000];
	size_t moved = 0, diff = 0;

	(void)state;
	dataset_epoch_order(a, 1000, 42, 3);
	dataset_epoch_order(b, 1000, 42, 3);
	dataset_epoch_order(c, 1000, 42, 4);
	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < 1000; i++) {
		assert_true(a[i] < 1000);
		assert_false(seen[a[i]]);
		seen[a[i]] = 1;
		assert_int_equal(a[i], b[i]);
		moved += a[i] != i;
		diff += a[i] != c[i];
	}
	assert_true(moved > 900);
	assert_true(diff > 900);
	assert_true(dataset_stream_seed(1, 2, 3) != dataset_stream_seed(1, 3, 2));
	assert_true(dataset_stream_seed(1, 2, 3) != dataset_stream_seed(2, 2, 3));
	assert_true(dataset_stream_seed(0, 0, 0) != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_folder),
		cmocka_unit_test(test_imagefolder_order),
		cmocka_unit_test(test_list_file),
		cmocka_unit_test(test_unlabelled_and_errors),
		cmocka_unit_test(test_limit_and_sample),
		cmocka_unit_test(test_sample_cifar_train),
		cmocka_unit_test(test_epoch_order),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
