/*
 * cancel — the process-wide map from the cancel keys the proxy hands to its
 * clients to the keys of the PostgreSQL backend currently serving them.
 * A CancelRequest may land on any worker thread, so the map is shared and
 * guarded by a mutex; it only ever copies keys, never touches connections.
 */
#ifndef EPOCH_WIRE_CANCEL_H
#define EPOCH_WIRE_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

/* Issue a fresh (pid, key) for a new client. false when out of memory. */
bool cancel_register(uint32_t *pid, uint32_t *key) __attribute__((warn_unused_result));
/* Point a client's keys at a backend (0,0 = no backend right now). */
void cancel_set_backend(uint32_t pid, uint32_t be_pid, uint32_t be_key);
/* Forget a client's keys. */
void cancel_unregister(uint32_t pid);
/* Look up the backend for a client's keys; false if unknown, wrong secret or
 * no backend attached. */
bool cancel_lookup(uint32_t pid, uint32_t key, uint32_t *be_pid, uint32_t *be_key);
void cancel_shutdown(void);

#endif
