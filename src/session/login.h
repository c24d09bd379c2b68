/*
 * login — the branch chosen when a client connects (dbname@branch, options
 * -c epoch.branch=…), checked before its first ReadyForQuery. Private to
 * src/session; these are hooks (wire/hooks.h).
 */
#ifndef EPOCH_SESSION_LOGIN_H
#define EPOCH_SESSION_LOGIN_H

#include <stdbool.h>
#include <stddef.h>

#include "wire/conn_api.h"

bool session_startup(client_t *c, char *err, size_t errcap);
bool session_login_wanted(const client_t *c);
void session_login_check(client_t *c);

#endif
