/* state — see state.h. */
#include "session/state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "session/named.h"
#include "session/refuse.h"

session_state_t *session_state(client_t *c)
{
    session_state_t *ss = client_hook_state(c);
    if (ss)
        return ss;
    ss = calloc(1, sizeof *ss);
    if (!ss)
        return NULL;
    ss->client_id = client_id(c);
    ss->cbatch = (uint64_t)client_inflight(c); /* answers already owed */
    client_set_hook_state(c, ss);
    return ss;
}

static void kinds_free(named_kind_t *k, int n)
{
    for (int i = 0; i < n; i++)
        free(k[i].name);
    free(k);
}

void session_release(client_t *c)
{
    session_state_t *ss = client_hook_state(c);
    if (!ss)
        return;
    catalog_free(&ss->cat);
    free(ss->view);
    free(ss->cache_key);
    free(ss->validated);
    free(ss->setup_done);
    kinds_free(ss->stmts, ss->nstmts);
    kinds_free(ss->portals, ss->nportals);
    named_free(ss);
    session_refusals_free(ss);
    free(ss->err_msg);
    free(ss->prepared);
    free(ss->unnamed);
    free(ss->fixes);
    free(ss);
    client_set_hook_state(c, NULL);
}

static const char *phase_name(session_phase_t p)
{
    switch (p) {
    case PHASE_IDLE:
        return "idle";
    case PHASE_BUSY:
        return "busy";
    case PHASE_FAILED:
        return "failed";
    }
    epoch_assert(!"bad session phase");
    return NULL;
}

static const char *schema_name(schema_state_t s)
{
    switch (s) {
    case SCHEMA_UNKNOWN:
        return "unknown";
    case SCHEMA_CURRENT_IN_TX:
        return "current in transaction";
    case SCHEMA_CURRENT:
        return "current";
    }
    epoch_assert(!"bad schema state");
    return NULL;
}

void session_set_phase(session_state_t *ss, session_phase_t phase)
{
    if (ss->phase == phase)
        return;
    log_debug("client %llu: session %s -> %s", (unsigned long long)ss->client_id,
              phase_name(ss->phase), phase_name(phase));
    ss->phase = phase;
}

void session_set_schema(session_state_t *ss, schema_state_t schema)
{
    if (ss->schema == schema)
        return;
    log_debug("client %llu: epoch schema %s -> %s", (unsigned long long)ss->client_id,
              schema_name(ss->schema), schema_name(schema));
    ss->schema = schema;
}

void session_record_error(session_state_t *ss, const char *sqlstate, const char *message)
{
    if (ss->err_state[0])
        return; /* the first error is the one to report */
    snprintf(ss->err_state, sizeof ss->err_state, "%s", sqlstate ? sqlstate : "XX000");
    ss->err_msg = strdup(message ? message : "internal statement failed");
}

void session_settle(session_state_t *ss)
{
    session_set_phase(ss, ss->err_state[0] ? PHASE_FAILED : PHASE_IDLE);
}

bool named_kind_set(named_kind_t **arr, int *n, const char *name, char kind)
{
    for (int i = 0; i < *n; i++)
        if (strcmp((*arr)[i].name, name) == 0) {
            if (kind == '-') {
                free((*arr)[i].name);
                (*arr)[i] = (*arr)[--*n];
            } else {
                (*arr)[i].kind = kind;
            }
            return true;
        }
    if (kind == '-')
        return true;
    named_kind_t *grown = realloc(*arr, (size_t)(*n + 1) * sizeof *grown);
    if (!grown)
        return false;
    *arr = grown;
    grown[*n].name = strdup(name);
    if (!grown[*n].name)
        return false;
    grown[(*n)++].kind = kind;
    return true;
}

char named_kind_get(const named_kind_t *arr, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(arr[i].name, name) == 0)
            return arr[i].kind;
    return '-';
}

bool session_push_fix(session_state_t *ss, uint64_t batch, int index, char kind)
{
    if (ss->nfix == MAX_FIXES)
        return false;
    if (!ss->fixes && !(ss->fixes = calloc(MAX_FIXES, sizeof *ss->fixes)))
        return false;
    ss->fixes[ss->nfix++] = (struct tag_fix){batch, index, kind};
    return true;
}
