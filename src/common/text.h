/*
 * text — string literals measured by the compiler, never by hand: a
 * hand-counted length that is off by one compares or copies the wrong bytes
 * silently.
 */
#ifndef EPOCH_COMMON_TEXT_H
#define EPOCH_COMMON_TEXT_H

#include <string.h>
#include <strings.h>

/* The length of a string literal (without its NUL). */
#define LIT_LEN(lit) (sizeof("" lit) - 1)
/* s starts with the literal (case-sensitive / case-insensitive). */
#define HAS_PREFIX(s, lit) (strncmp((s), "" lit, LIT_LEN(lit)) == 0)
#define HAS_PREFIX_CI(s, lit) (strncasecmp((s), "" lit, LIT_LEN(lit)) == 0)
/* The n bytes at s are the literal, case-insensitively (a word of known length). */
#define WORD_IS_CI(s, n, lit) ((n) == LIT_LEN(lit) && strncasecmp((s), "" lit, LIT_LEN(lit)) == 0)
/* Append a literal to a buf_t (common/buf.h), without / with its NUL. */
#define BUF_LIT(b, lit) buf_append((b), "" lit, LIT_LEN(lit))
#define BUF_LIT_NUL(b, lit) buf_append((b), "" lit, sizeof("" lit))

#endif
