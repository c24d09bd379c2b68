/*
 * auth_internal — private hooks of the auth module, for unit tests only.
 *
 * SCRAM normally draws its salt and nonces from RAND_bytes, which makes known
 * test vectors (RFC 7677, values computed by PostgreSQL) impossible to replay.
 * These functions fix the random parts. Production code must not call them;
 * nothing outside src/wire/auth_*.c and tests/unit includes this header.
 */
#ifndef EPOCH_WIRE_AUTH_INTERNAL_H
#define EPOCH_WIRE_AUTH_INTERNAL_H

#include "wire/auth.h"

/* Derive a verifier from a password with a given salt and iteration count. */
bool scram_secret_build(const char *password, const uint8_t *salt, size_t salt_len, int iterations,
                        scram_secret_t *out);

/* Use `suffix` (printable, no ',') as the server's part of the nonce instead
 * of 18 random bytes. Must be called before scram_server_first. */
bool scram_server_fix_nonce(scram_server_t *s, const char *suffix);

/* Use `nonce` as the client nonce and `user` as the n= value of the
 * client-first-message (PostgreSQL's client sends "n="). Must be called
 * before scram_client_first. */
bool scram_client_fix_nonce(scram_client_t *c, const char *user, const char *nonce);

#endif
