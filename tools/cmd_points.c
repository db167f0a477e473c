/*
 * qcal points: list the quantization points of a model (name, kind, role,
 * per-image shape), in forward order.  The same names key configs, scale
 * files and reports.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "model/qpoint.h"
#include "model/swin_model.h"
#include "tools/cli.h"
#include "tools/commands.h"

static void points_help(void)
{
	printf("usage: qcal points --model M.h5 [--kind KIND] [--role ROLE]\n"
	       "\n"
	       "List every quantization point: name, kind, role and shape (per image for\n"
	       "activations).  Kinds: input, patch_embed, layernorm.{mean,centered,square,var,\n"
	       "rstd,normalized,out}, attn.{q,k,v,q_scaled,qk,rel_pos_bias,logits,av},\n"
	       "softmax.{sub_max,exp,sum,recip,out}, linear, gelu, add, concat, pool, head, weight.\n"
	       "\n"
	       "  -m, --model FILE   checkpoint\n"
	       "  -k, --kind KIND    only points of this kind\n"
	       "  -r, --role ROLE    only activation, aux or weight points\n"
	       "  -h, --help         this help\n");
}

int cmd_points(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },
		{ "kind", required_argument, NULL, 'k' },
		{ "role", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *model_path = NULL, *kind_filter = NULL, *role_filter = NULL;
	struct qcal_err err = { 0 };
	struct swin_model model;
	struct qp_table table;
	enum qp_kind kind = QP_KIND_INPUT;
	int c, shown = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "m:k:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model_path = optarg; break;
		case 'k': kind_filter = optarg; break;
		case 'r': role_filter = optarg; break;
		case 'h': points_help(); return QCAL_EXIT_OK;
		default: return cli_usage_error("points", "invalid option");
		}
	}
	if (optind < argc)
		return cli_usage_error("points", "unexpected argument '%s'", argv[optind]);
	if (!model_path)
		return cli_usage_error("points", "--model is required");
	if (kind_filter && qp_kind_parse(kind_filter, &kind) != 0)
		return cli_usage_error("points", "unknown kind '%s'", kind_filter);
	if (role_filter && strcmp(role_filter, "activation") && strcmp(role_filter, "aux") &&
	    strcmp(role_filter, "weight"))
		return cli_usage_error("points", "--role wants activation, aux or weight");
	if (swin_model_load(&model, model_path, &err) != QCAL_OK)
		return cli_fail("points", &err);
	if (qp_table_init(&table, &model.cfg, &model.table, &err) != QCAL_OK) {
		swin_model_free(&model);
		return cli_fail("points", &err);
	}
	printf("%-52s %-22s %-10s %s\n", "# name", "kind", "role", "shape");
	for (int i = 0; i < table.count; i++) {
		const struct qp_point *p = &table.points[i];
		char shape[96];
		size_t used = 0;
		if (kind_filter && p->kind != kind)
			continue;
		if (role_filter && strcmp(role_filter, qp_role_name(p->role)) != 0)
			continue;
		for (int d = 0; d < p->ndim; d++)
			used += (size_t)snprintf(shape + used, sizeof(shape) - used, "%s%lld",
						 d ? "x" : "", (long long)p->shape[d]);
		printf("%-52s %-22s %-10s %s\n", p->name, qp_kind_name(p->kind),
		       qp_role_name(p->role), shape);
		shown++;
	}
	printf("# %d of %d points\n", shown, table.count);
	qp_table_free(&table);
	swin_model_free(&model);
	return QCAL_EXIT_OK;
}
