/*
 * sweeper — periodic expired-branch sweeps and history gc, one proxy of a
 * group at a time (sweeper.c).
 */
#ifndef EPOCH_WIRE_SWEEPER_H
#define EPOCH_WIRE_SWEEPER_H

typedef struct worker worker_t;

/* Every worker's 1 s tick: worker 0 starts a round when one is due. */
void sweeper_tick(worker_t *w);
/* The loop is ending: a round under way is given up. */
void sweeper_stop(worker_t *w);

#endif
