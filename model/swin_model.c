/*
 * Model lifetime: allocation, random initialisation, cloning, and the
 * input-normalisation fold used by the J5 recipe's fixed 1/128 input scale.
 */
#include "model/swin_model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum qcal_status swin_model_init(struct swin_model *m,
				 const struct swin_config *cfg,
				 struct qcal_err *err)
{
	enum qcal_status st;
	int n = cfg->window_size * cfg->window_size;

	memset(m, 0, sizeof(*m));
	st = swin_config_validate(cfg, err);
	if (st != QCAL_OK)
		return st;
	if (swin_config_copy(&m->cfg, cfg) != QCAL_OK)
		return qcal_err_set(err, QCAL_ENOMEM, "model: out of memory");
	st = swin_param_table_init(&m->table, &m->cfg, err);
	if (st != QCAL_OK)
		goto out_fail;
	size_t bytes = (m->table.numel * sizeof(float) + 63) / 64 * 64;
	m->params = aligned_alloc(64, bytes);
	m->rel_index = malloc((size_t)n * (size_t)n * sizeof(int32_t));
	if (!m->params || !m->rel_index) {
		st = qcal_err_set(err, QCAL_ENOMEM,
				  "model: cannot allocate %zu parameters", m->table.numel);
		goto out_fail;
	}
	memset(m->params, 0, bytes);
	swin_relative_position_index(cfg->window_size, m->rel_index);
	if (swin_weights_bind(&m->w, &m->cfg, &m->table, m->params) != QCAL_OK) {
		st = qcal_err_set(err, QCAL_ENOMEM, "model: out of memory");
		goto out_fail;
	}
	return QCAL_OK;
out_fail:
	swin_model_free(m);
	return st;
}

void swin_model_free(struct swin_model *m)
{
	if (!m)
		return;
	swin_weights_unbind(&m->w);
	free(m->params);
	free(m->rel_index);
	swin_param_table_free(&m->table);
	swin_config_free(&m->cfg);
	memset(m, 0, sizeof(*m));
}

enum qcal_status swin_model_clone(struct swin_model *dst,
				  const struct swin_model *src,
				  struct qcal_err *err)
{
	enum qcal_status st = swin_model_init(dst, &src->cfg, err);

	if (st != QCAL_OK)
		return st;
	memcpy(dst->params, src->params, src->table.numel * sizeof(float));
	dst->input_folded = src->input_folded;
	return QCAL_OK;
}

void swin_model_randomize(struct swin_model *m, struct qcal_rng *rng)
{
	for (int i = 0; i < m->table.count; i++) {
		const struct swin_param_spec *s = &m->table.specs[i];
		float *p = m->params + s->offset;
		for (size_t j = 0; j < s->numel; j++) {
			switch (s->kind) {
			case SWIN_PARAM_NORM_WEIGHT:
				p[j] = 1.0f;
				break;
			case SWIN_PARAM_NORM_BIAS:
			case SWIN_PARAM_BIAS:
				p[j] = 0.0f;
				break;
			default: {
				float v;
				do
					v = qcal_rng_normal(rng);
				while (fabsf(v) > 2.0f);
				p[j] = 0.02f * v;
			}
			}
		}
	}
}

void swin_model_fold_input_norm(struct swin_model *m)
{
	const struct swin_config *c = &m->cfg;
	int E = c->embed_dim, Cin = c->in_chans, PP = c->patch_size * c->patch_size;
	/* (p/255 - mean)/std with p = 128 + 128 u  ==  u * a_c + b_c */
	const double centre = 128.0 / 255.0;

	if (m->input_folded)
		return;
	for (int o = 0; o < E; o++) {
		double bias = m->w.patch_b[o];
		for (int ci = 0; ci < Cin; ci++) {
			double a = centre / c->std[ci];
			double b = (centre - c->mean[ci]) / c->std[ci];
			float *w = m->w.patch_w + ((size_t)o * Cin + ci) * PP;
			for (int k = 0; k < PP; k++) {
				bias += (double)w[k] * b;
				w[k] = (float)(w[k] * a);
			}
		}
		m->w.patch_b[o] = (float)bias;
	}
	m->input_folded = 1;
}

double swin_forward_flops(const struct swin_config *c)
{
	double flops = 0;
	int res0 = c->img_size / c->patch_size;
	double N = (double)c->window_size * c->window_size;

	flops += 2.0 * res0 * res0 * c->embed_dim * c->in_chans * c->patch_size *
		 c->patch_size;
	for (int s = 0; s < c->num_stages; s++) {
		double C = swin_stage_dim(c, s), Hd = swin_mlp_hidden(c, s);
		double T = (double)swin_stage_res(c, s) * swin_stage_res(c, s);
		double Tp = (double)swin_padded_res(c, s) * swin_padded_res(c, s);
		double per_block = 2.0 * Tp * C * 3 * C   /* qkv */
				   + 2.0 * Tp * N * C * 2 /* q@k^T and attn@v */
				   + 2.0 * Tp * C * C     /* proj */
				   + 2.0 * T * C * Hd * 2; /* mlp */
		flops += per_block * c->depths[s];
		if (s + 1 < c->num_stages) {
			double r = swin_stage_res(c, s + 1);
			flops += 2.0 * r * r * 4 * C * 2 * C;
		}
	}
	flops += 2.0 * swin_stage_dim(c, c->num_stages - 1) * c->num_classes;
	return flops;
}
