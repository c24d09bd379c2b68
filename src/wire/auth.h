/*
 * auth — password verification primitives for the proxy (no I/O).
 *
 * Two roles:
 *   - server side: in userlist mode the proxy itself authenticates a client
 *     with SCRAM-SHA-256 (RFC 5802/7677) or md5 against a userlist entry;
 *   - client side: the proxy logs in to PostgreSQL with configured
 *     credentials (SCRAM-SHA-256, md5 or cleartext).
 * Everything here is pure computation on buffers (OpenSSL for the crypto);
 * nothing here reads sockets, logs passwords or keeps global state.
 * All output strings are NUL-terminated; a false return leaves a short,
 * secret-free reason in `err` (at least 128 bytes are always passed).
 */
#ifndef EPOCH_WIRE_AUTH_H
#define EPOCH_WIRE_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_ERR_LEN 128
#define SCRAM_KEY_LEN 32 /* SHA-256 */
#define SCRAM_MAX_SALT 64

/* A SCRAM-SHA-256 verifier: the form PostgreSQL stores in pg_authid,
 * "SCRAM-SHA-256$<iterations>:<salt b64>$<StoredKey b64>:<ServerKey b64>". */
typedef struct scram_secret {
    int iterations;
    uint8_t salt[SCRAM_MAX_SALT];
    size_t salt_len;
    uint8_t stored_key[SCRAM_KEY_LEN];
    uint8_t server_key[SCRAM_KEY_LEN];
} scram_secret_t;

/* Parse a stored verifier. Returns false on any malformed part. */
bool scram_secret_parse(const char *text, scram_secret_t *out);

/* Derive a verifier from a plaintext password with a fresh random 16-byte
 * salt and 4096 iterations (what PostgreSQL does). */
bool scram_secret_from_password(const char *password, scram_secret_t *out);

/* Server-side exchange state. Allocated by scram_server_new, freed by
 * scram_server_free (which wipes it). */
typedef struct scram_server scram_server_t;

scram_server_t *scram_server_new(const scram_secret_t *secret);
void scram_server_free(scram_server_t *s);

/* Step 1: take the client-first-message (the SASLInitialResponse payload,
 * e.g. "n,,n=,r=abc"), write the server-first-message ("r=...,s=...,i=...")
 * into out. Channel binding ("p=") is refused with false; "y" and "n" are
 * accepted. */
bool scram_server_first(scram_server_t *s, const char *client_first, size_t len, char *out,
                        size_t outcap, char *err);

/* Step 2: take the client-final-message ("c=biws,r=...,p=..."), verify the
 * nonce and the proof; on success write the server-final-message
 * ("v=...") into out. false = wrong password or malformed message. */
bool scram_server_final(scram_server_t *s, const char *client_final, size_t len, char *out,
                        size_t outcap, char *err);

/* Client-side exchange state (the proxy logging in to PostgreSQL). */
typedef struct scram_client scram_client_t;

scram_client_t *scram_client_new(const char *password);
void scram_client_free(scram_client_t *c);

/* Write the client-first-message ("n,,n=,r=<nonce>") into out. */
bool scram_client_first(scram_client_t *c, char *out, size_t outcap, char *err);

/* Take the server-first-message, write the client-final-message (with proof). */
bool scram_client_final(scram_client_t *c, const char *server_first, size_t len, char *out,
                        size_t outcap, char *err);

/* Check the server-final-message ("v=..."); false if the server's signature
 * is wrong (the server does not know the password) or an "e=" error. */
bool scram_client_verify(scram_client_t *c, const char *server_final, size_t len, char *err);

/* md5: "md5" + hex(md5(password || user)), 35 chars + NUL. */
void md5_password_hash(const char *user, const char *password, char out[36]);

/* md5 response to a 4-byte salt: "md5" + hex(md5(hex_of_stored_hash || salt)).
 * `stored` is either a plaintext password or an "md5..." hash of it. */
void md5_salted_response(const char *user, const char *stored, const uint8_t salt[4], char out[36]);

/* Constant-time verification of a client's md5 response against a userlist
 * entry (plaintext or "md5..." hash). */
bool md5_verify(const char *user, const char *stored, const uint8_t salt[4],
                const char *client_response);

/* The userlist file: one entry per line, `"user" "secret"` (PgBouncer's
 * format; "" inside quotes is a literal quote). The secret is a plaintext
 * password, an "md5<32 hex>" hash, or a "SCRAM-SHA-256$..." verifier.
 * Blank lines and lines starting with ';' or '#' are ignored. */
typedef struct userlist userlist_t;

/* Load a file. NULL on error, with the reason (and line number) in err. */
userlist_t *userlist_load(const char *path, char *err, size_t errcap);
void userlist_free(userlist_t *ul);

/* Secret for a user, or NULL. Valid as long as the userlist. */
const char *userlist_lookup(const userlist_t *ul, const char *user);

typedef enum { SECRET_PLAIN, SECRET_MD5, SECRET_SCRAM } secret_kind_t;
secret_kind_t auth_secret_kind(const char *secret);

#endif
