/* AdamW / SGD updates and the warmup + cosine schedule; see optim.h. */
#include "qat/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void optim_config_default(struct optim_config *c, enum optim_kind kind)
{
	memset(c, 0, sizeof(*c));
	c->kind = kind;
	c->lr = kind == OPTIM_ADAMW ? 1e-4 : 1e-3;
	c->weight_decay = kind == OPTIM_ADAMW ? 0.05 : 0.0;
	c->beta1 = 0.9;
	c->beta2 = 0.999;
	c->eps = 1e-8;
	c->momentum = 0.9;
}

const char *optim_kind_name(enum optim_kind kind)
{
	return kind == OPTIM_ADAMW ? "adamw" : "sgd";
}

int optim_kind_parse(const char *name, enum optim_kind *kind)
{
	if (!strcmp(name, "adamw"))
		*kind = OPTIM_ADAMW;
	else if (!strcmp(name, "sgd"))
		*kind = OPTIM_SGD;
	else
		return -1;
	return 0;
}

enum qcal_status optim_state_init(struct optim_state *s, size_t n,
				  struct qcal_err *err)
{
	memset(s, 0, sizeof(*s));
	s->n = n;
	s->m = calloc(n ? n : 1, sizeof(float));
	s->v = calloc(n ? n : 1, sizeof(float));
	if (!s->m || !s->v) {
		optim_state_free(s);
		return qcal_err_set(err, QCAL_ENOMEM, "optimizer: cannot allocate state for %zu parameters", n);
	}
	return QCAL_OK;
}

void optim_state_free(struct optim_state *s)
{
	if (!s)
		return;
	free(s->m);
	free(s->v);
	memset(s, 0, sizeof(*s));
}

void optim_step(const struct optim_config *c, struct optim_state *s,
		float *p, const float *g, const uint8_t *decay, double lr)
{
	s->step++;
	if (c->kind == OPTIM_ADAMW) {
		/* Scalars are formed in double and rounded once, as PyTorch's
		 * Python-side arithmetic does, so results match torch.optim.AdamW. */
		const float b1 = (float)c->beta1, one_b1 = (float)(1.0 - c->beta1);
		const float b2 = (float)c->beta2, one_b2 = (float)(1.0 - c->beta2);
		const double bc1 = 1.0 - pow(c->beta1, (double)s->step);
		const double bc2 = 1.0 - pow(c->beta2, (double)s->step);
		const float step_size = (float)(lr / bc1);
		const float bc2_sqrt = (float)sqrt(bc2);
		const float eps = (float)c->eps;
		const float keep = (float)(1.0 - lr * c->weight_decay);
		for (size_t i = 0; i < s->n; i++) {
			if (!decay || decay[i])
				p[i] *= keep;
			s->m[i] = s->m[i] * b1 + one_b1 * g[i];
			s->v[i] = s->v[i] * b2 + one_b2 * (g[i] * g[i]);
			float denom = sqrtf(s->v[i]) / bc2_sqrt + eps;
			p[i] += -step_size * (s->m[i] / denom);
		}
	} else {
		const float mu = (float)c->momentum, wd = (float)c->weight_decay;
		const float neg_lr = (float)-lr;
		for (size_t i = 0; i < s->n; i++) {
			float gi = g[i];
			if (wd != 0.0f && (!decay || decay[i]))
				gi += wd * p[i];
			s->m[i] = s->step == 1 ? gi : s->m[i] * mu + gi;
			p[i] += neg_lr * s->m[i];
		}
	}
}

double lr_at(const struct lr_schedule *s, int64_t step)
{
	if (s->warmup > 0 && step < s->warmup)
		return s->peak * (double)(step + 1) / (double)s->warmup;
	if (s->total <= s->warmup)
		return s->peak;
	double t = (double)(step - s->warmup) / (double)(s->total - s->warmup);
	if (t > 1.0)
		t = 1.0;
	return s->min_lr + 0.5 * (s->peak - s->min_lr) * (1.0 + cos(M_PI * t));
}
