/*
 * server_params — the ParameterStatus values a server reported: the latest
 * of each, and the value it had when the login finished (what a pooled
 * client is told at its first link, and what settings replay compares).
 */
#include "wire/conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"

static void set_param(server_t *sv, const char *name, const char *value)
{
    for (int i = 0; i < sv->n_params; i++)
        if (strcmp(sv->params[i].name, name) == 0) {
            char *v = strdup(value);
            if (v) {
                free(sv->params[i].value);
                sv->params[i].value = v;
            }
            return;
        }
    server_param_t *grown = realloc(sv->params, (size_t)(sv->n_params + 1) * sizeof *grown);
    if (!grown)
        return;
    sv->params = grown;
    server_param_t *p = &sv->params[sv->n_params];
    p->name = strdup(name);
    p->value = strdup(value);
    p->login_value = NULL;
    if (!p->name || !p->value) {
        free(p->name);
        free(p->value);
        return;
    }
    sv->n_params++;
}

/* The login is done: what the server reports now is its login state. */
void server_snapshot_login_params(server_t *sv)
{
    for (int i = 0; i < sv->n_params; i++)
        if (!sv->params[i].login_value)
            sv->params[i].login_value = strdup(sv->params[i].value); /* NULL: unknown */
}

/* ParameterStatus body: name\0value\0 */
void server_note_param(server_t *sv, const char *body, size_t len)
{
    const char *nul = memchr(body, 0, len);
    if (!nul || !memchr(nul + 1, 0, len - (size_t)(nul + 1 - body)))
        return;
    set_param(sv, body, nul + 1);
}

static const server_param_t *find_param(const server_t *sv, const char *name)
{
    for (int i = 0; i < sv->n_params; i++)
        if (strcasecmp(sv->params[i].name, name) == 0)
            return &sv->params[i];
    return NULL;
}

const char *server_param(const server_t *sv, const char *name)
{
    const server_param_t *p = find_param(sv, name);
    return p ? p->value : NULL;
}

const char *server_param_login(const server_t *sv, const char *name)
{
    const server_param_t *p = find_param(sv, name);
    return p ? p->login_value : NULL;
}

bool server_params_replay(const server_t *sv, buf_t *out)
{
    for (int i = 0; i < sv->n_params; i++)
        if (!proto_param_status(out, sv->params[i].name, sv->params[i].value))
            return false;
    return true;
}
