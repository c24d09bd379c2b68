/*
 * proto — PostgreSQL v3 protocol constants, the startup packet, and builders
 * for the messages the proxy itself sends. Parsing here trusts no length:
 * every accessor is bounds-checked against the message it was given.
 */
#ifndef EPOCH_WIRE_PROTO_H
#define EPOCH_WIRE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define PROTO_V3 196608u /* 3.0 */
#define PROTO_SSL_REQUEST 80877103u
#define PROTO_GSSENC_REQUEST 80877104u
#define PROTO_CANCEL_REQUEST 80877102u
#define PROTO_MAX_STARTUP 10000 /* PostgreSQL's own MAX_STARTUP_PACKET_LENGTH */

/* Authentication request codes ('R' messages). */
enum {
    AUTH_REQ_OK = 0,
    AUTH_REQ_PASSWORD = 3,
    AUTH_REQ_MD5 = 5,
    AUTH_REQ_SASL = 10,
    AUTH_REQ_SASL_CONTINUE = 11,
    AUTH_REQ_SASL_FINAL = 12,
};

/* A parsed startup packet: the "name\0value\0...\0" list, copied. */
typedef struct startup {
    uint32_t version;
    char *params; /* owned: name\0value\0 pairs */
    size_t params_len;
    const char *user;     /* into params */
    const char *database; /* into params; defaults to user */
    const char *options;  /* into params, or NULL */
    const char *application_name;
    char **unknown_pq; /* "_pq_." options (for NegotiateProtocolVersion) */
    int n_unknown_pq;
} startup_t;

/* Parse the body of a StartupMessage (after the length and version). On
 * failure returns false with a client-facing reason. */
bool startup_parse(startup_t *st, uint32_t version, const char *body, size_t len, char *err,
                   size_t errcap) __attribute__((warn_unused_result));
void startup_free(startup_t *st);
/* Iterate: returns the next (name, value) after *pos, false at the end. */
bool startup_next(const startup_t *st, size_t *pos, const char **name, const char **value);

/* Builders (append to b; false = out of memory). */
bool proto_error(buf_t *b, const char *severity, const char *sqlstate, const char *message,
                 const char *hint) __attribute__((warn_unused_result));
bool proto_notice(buf_t *b, const char *severity, const char *sqlstate, const char *message,
                  const char *hint) __attribute__((warn_unused_result));
bool proto_ready(buf_t *b, char status) __attribute__((warn_unused_result));
bool proto_auth(buf_t *b, uint32_t code, const void *data, size_t len)
    __attribute__((warn_unused_result));
bool proto_param_status(buf_t *b, const char *name, const char *value)
    __attribute__((warn_unused_result));
bool proto_backend_key(buf_t *b, uint32_t pid, uint32_t key) __attribute__((warn_unused_result));
bool proto_query(buf_t *b, const char *sql) __attribute__((warn_unused_result));

/* Error/notice fields: find field `code` ('C' SQLSTATE, 'M' message, 'S'
 * severity) in an ErrorResponse/NoticeResponse body; NULL if absent. */
const char *proto_error_field(const char *body, size_t len, char code);

/* The fields of a Parse message (msg = the whole message, type byte first,
 * total bytes), pointing into it. false when a string is not terminated. */
typedef struct proto_parse_msg {
    const char *name;  /* the statement's name ("" = unnamed) */
    const char *query; /* the statement's text */
    const char *types; /* Int16 count, then the Int32 type OIDs: the rest as it is */
    size_t types_len;
} proto_parse_msg_t;
bool proto_parse_decode(const char *msg, size_t total, proto_parse_msg_t *out)
    __attribute__((warn_unused_result));

/* The fields of a Bind message, as proto_parse_decode. */
typedef struct proto_bind_msg {
    const char *portal;    /* "" = unnamed */
    const char *statement; /* "" = unnamed */
    const char *rest;      /* formats, parameters, result formats: as they are */
    size_t rest_len;
} proto_bind_msg_t;
bool proto_bind_decode(const char *msg, size_t total, proto_bind_msg_t *out)
    __attribute__((warn_unused_result));

#endif
