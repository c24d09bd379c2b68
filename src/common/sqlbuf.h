/*
 * sqlbuf — the one builder of SQL text the proxy generates. Appends never
 * report failure one by one: the first failed allocation sets a sticky flag,
 * later appends do nothing, and sqlbuf_take() then returns NULL, so an
 * out-of-memory can never splice a truncated statement and send it.
 *
 * Names and values go in only through sqlbuf_ident() and sqlbuf_literal()
 * (CONVENTIONS.md: never paste a name or a value).
 */
#ifndef EPOCH_COMMON_SQLBUF_H
#define EPOCH_COMMON_SQLBUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct sqlbuf {
    char *data; /* NUL-terminated while !failed (NULL before the first append) */
    size_t len, cap;
    bool failed; /* an append ran out of memory: the text is incomplete */
} sqlbuf_t;

void sqlbuf_append(sqlbuf_t *sb, const char *s, size_t n);
void sqlbuf_puts(sqlbuf_t *sb, const char *s);
void sqlbuf_putc(sqlbuf_t *sb, char ch);
void sqlbuf_printf(sqlbuf_t *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A string literal, measured by the compiler: SQLBUF_LIT(sb, "SELECT "). */
#define SQLBUF_LIT(sb, lit) sqlbuf_append((sb), "" lit, sizeof(lit) - 1)
/* An identifier, always double-quoted (quotes doubled): names are taken as
 * PostgreSQL stored them, so case and keywords never matter. */
void sqlbuf_ident(sqlbuf_t *sb, const char *name);
/* A string literal, PostgreSQL's quote_literal: '…' with quotes doubled, and
 * E'…' with backslashes doubled when the value holds one. */
void sqlbuf_literal(sqlbuf_t *sb, const char *value);
/* The text so far ("" when empty); only meaningful while !sb->failed. */
const char *sqlbuf_str(const sqlbuf_t *sb);
/* Hand the text over (caller frees); NULL when an append failed (the buffer
 * is freed either way and sb is empty again). */
char *sqlbuf_take(sqlbuf_t *sb) __attribute__((warn_unused_result));
void sqlbuf_free(sqlbuf_t *sb);

#endif
