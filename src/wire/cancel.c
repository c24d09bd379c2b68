/*
 * cancel — see cancel.h. The proxy pid is a slot index (+1) into a growable
 * array; the secret is random, so guessing a pid is not enough to cancel
 * someone else's query. Freed slots are reused through a free list.
 */
#include "wire/cancel.h"

#include <pthread.h>
#include <stdlib.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

typedef struct slot {
    uint32_t key;
    uint32_t be_pid, be_key;
    bool used;
    uint32_t next_free;
} slot_t;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static slot_t *slots;
static uint32_t n_slots, cap_slots;
static uint32_t free_head; /* 1-based; 0 = none */

bool cancel_register(uint32_t *pid, uint32_t *key)
{
    uint32_t secret;
    if (RAND_bytes((unsigned char *)&secret, sizeof secret) != 1)
        return false;
    pthread_mutex_lock(&lock);
    uint32_t idx;
    if (free_head) {
        idx = free_head - 1;
        free_head = slots[idx].next_free;
    } else {
        if (n_slots == cap_slots) {
            uint32_t ncap = cap_slots ? cap_slots * 2 : 1024;
            slot_t *grown = realloc(slots, ncap * sizeof *grown);
            if (!grown) {
                pthread_mutex_unlock(&lock);
                return false;
            }
            slots = grown;
            cap_slots = ncap;
        }
        idx = n_slots++;
    }
    slots[idx] = (slot_t){.key = secret, .used = true};
    pthread_mutex_unlock(&lock);
    *pid = idx + 1;
    *key = secret;
    return true;
}

void cancel_set_backend(uint32_t pid, uint32_t be_pid, uint32_t be_key)
{
    pthread_mutex_lock(&lock);
    if (pid >= 1 && pid <= n_slots && slots[pid - 1].used) {
        slots[pid - 1].be_pid = be_pid;
        slots[pid - 1].be_key = be_key;
    }
    pthread_mutex_unlock(&lock);
}

void cancel_unregister(uint32_t pid)
{
    pthread_mutex_lock(&lock);
    if (pid >= 1 && pid <= n_slots && slots[pid - 1].used) {
        slots[pid - 1].used = false;
        slots[pid - 1].next_free = free_head;
        free_head = pid;
    }
    pthread_mutex_unlock(&lock);
}

bool cancel_lookup(uint32_t pid, uint32_t key, uint32_t *be_pid, uint32_t *be_key)
{
    bool ok = false;
    pthread_mutex_lock(&lock);
    if (pid >= 1 && pid <= n_slots && slots[pid - 1].used &&
        CRYPTO_memcmp(&slots[pid - 1].key, &key, sizeof key) == 0 && slots[pid - 1].be_pid) {
        *be_pid = slots[pid - 1].be_pid;
        *be_key = slots[pid - 1].be_key;
        ok = true;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

void cancel_shutdown(void)
{
    pthread_mutex_lock(&lock);
    free(slots);
    slots = NULL;
    n_slots = cap_slots = free_head = 0;
    pthread_mutex_unlock(&lock);
}
