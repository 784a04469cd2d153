/*
 * balancer.c — backend table and round-robin selection.
 */
#include <stdlib.h>
#include <unistd.h>

#include "balancer.h"

int
bal_init(struct backend_table *t, const struct config *cfg)
{
	t->n = cfg->nbackends;
	t->next = 0;
	t->backends = calloc(t->n, sizeof(*t->backends));
	if (t->backends == NULL)
		return -1;
	for (size_t i = 0; i < t->n; i++) {
		t->backends[i].conf = &cfg->backends[i];
		pthread_mutex_init(&t->backends[i].idle_lock, NULL);
	}
	return 0;
}

void
bal_free(struct backend_table *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct backend *b = &t->backends[i];
		for (size_t k = 0; k < b->nidle; k++)
			close(b->idle_fd[k]);
		pthread_mutex_destroy(&b->idle_lock);
	}
	free(t->backends);
	t->backends = NULL;
	t->n = 0;
}

struct backend *
bal_pick(struct backend_table *t, const struct backend *skip)
{
	unsigned turn = t->next++;
	struct backend *b = &t->backends[turn % t->n];

	if (b == skip && t->n > 1)
		b = &t->backends[(turn + 1) % t->n];
	return b;
}
