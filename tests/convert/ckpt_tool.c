/*
 * Checkpoint helper for tests/convert/test_convert.py: lets the Python test
 * put files written by tools/convert_checkpoint.py through the C loader, and
 * files written by swin_model_save through torchvision, without the qcal
 * CLI.  Not installed; a test driver, so it prints.
 *
 *   ckpt_tool load A.h5              load strictly; print a summary line
 *   ckpt_tool compare A.h5 B.h5      load both; exit 0 iff the configs are
 *                                    equal and every parameter is bit-equal
 *   ckpt_tool resave IN.h5 OUT.h5    load IN, swin_model_save to OUT, load
 *                                    OUT back and compare with IN
 *
 * Exit codes: 0 ok, 1 a load failed or the models differ, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/swin_model.h"

static int load(struct swin_model *m, const char *path)
{
	struct qcal_err err;

	if (swin_model_load(m, path, &err) != QCAL_OK) {
		fprintf(stderr, "ckpt_tool: %s (%s)\n", err.msg,
			qcal_status_name(err.status));
		return -1;
	}
	return 0;
}

/* 0 iff a and b have the same config (as JSON) and bit-equal parameters. */
static int compare(const struct swin_model *a, const struct swin_model *b,
		   const char *pa, const char *pb)
{
	char *ja = swin_config_to_json(&a->cfg), *jb = swin_config_to_json(&b->cfg);
	int rc = 0;

	if (!ja || !jb || strcmp(ja, jb) != 0) {
		fprintf(stderr, "ckpt_tool: configs differ:\n  %s: %s\n  %s: %s\n", pa,
			ja ? ja : "?", pb, jb ? jb : "?");
		rc = 1;
	} else if (a->input_folded != b->input_folded) {
		fprintf(stderr, "ckpt_tool: input_folded differs (%d vs %d)\n",
			a->input_folded, b->input_folded);
		rc = 1;
	} else {
		size_t ndiff = 0;
		for (int i = 0; i < a->table.count; i++) {
			const struct swin_param_spec *s = &a->table.specs[i];
			if (memcmp(a->params + s->offset, b->params + s->offset,
				   s->numel * sizeof(float)) != 0) {
				if (!ndiff)
					fprintf(stderr, "ckpt_tool: %s differs\n", s->name);
				ndiff++;
			}
		}
		if (ndiff) {
			fprintf(stderr, "ckpt_tool: %zu tensors differ\n", ndiff);
			rc = 1;
		}
	}
	free(ja);
	free(jb);
	if (rc == 0)
		printf("identical: %s and %s (%d tensors, %zu parameters, bit-exact)\n",
		       pa, pb, a->table.count, a->table.numel);
	return rc;
}

static int usage(void)
{
	fprintf(stderr, "usage: ckpt_tool load A.h5 | compare A.h5 B.h5 | resave IN.h5 OUT.h5\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct swin_model a, b;
	int rc = 1;

	if (argc == 3 && strcmp(argv[1], "load") == 0) {
		if (load(&a, argv[2]) != 0)
			return 1;
		printf("loaded %s: %s, %d tensors, %zu parameters, input_folded %d\n",
		       argv[2], a.cfg.name, a.table.count, a.table.numel, a.input_folded);
		swin_model_free(&a);
		return 0;
	}
	if (argc != 4)
		return usage();
	if (strcmp(argv[1], "compare") == 0) {
		if (load(&a, argv[2]) != 0)
			return 1;
		if (load(&b, argv[3]) == 0) {
			rc = compare(&a, &b, argv[2], argv[3]);
			swin_model_free(&b);
		}
		swin_model_free(&a);
		return rc;
	}
	if (strcmp(argv[1], "resave") == 0) {
		struct qcal_err err;
		if (load(&a, argv[2]) != 0)
			return 1;
		if (swin_model_save(&a, argv[3], &err) != QCAL_OK)
			fprintf(stderr, "ckpt_tool: %s\n", err.msg);
		else if (load(&b, argv[3]) == 0) {
			rc = compare(&a, &b, argv[2], argv[3]);
			swin_model_free(&b);
		}
		swin_model_free(&a);
		return rc;
	}
	return usage();
}
