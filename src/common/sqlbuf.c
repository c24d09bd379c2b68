/* sqlbuf — see sqlbuf.h. */
#include "common/sqlbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(sqlbuf_t *sb, size_t extra)
{
    if (sb->failed)
        return false;
    if (sb->len + extra + 1 <= sb->cap)
        return true;
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + extra + 1) {
        if (cap > ((size_t)-1) / 2) {
            sb->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *grown = realloc(sb->data, cap);
    if (!grown) {
        sb->failed = true;
        return false;
    }
    sb->data = grown;
    sb->cap = cap;
    return true;
}

void sqlbuf_append(sqlbuf_t *sb, const char *s, size_t n)
{
    if (!reserve(sb, n))
        return;
    memcpy(sb->data + sb->len, s, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sqlbuf_puts(sqlbuf_t *sb, const char *s)
{
    sqlbuf_append(sb, s, strlen(s));
}

void sqlbuf_putc(sqlbuf_t *sb, char ch)
{
    sqlbuf_append(sb, &ch, 1);
}

void sqlbuf_printf(sqlbuf_t *sb, const char *fmt, ...)
{
    if (sb->failed)
        return;
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        sqlbuf_append(sb, small, (size_t)n);
        return;
    }
    if (!reserve(sb, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

/* Text between quote characters, each quote (and backslash, for literals)
 * doubled. */
static void quoted(sqlbuf_t *sb, const char *s, char quote, bool backslash)
{
    sqlbuf_putc(sb, quote);
    for (const char *p = s; *p; p++) {
        if (*p == quote || (backslash && *p == '\\'))
            sqlbuf_putc(sb, *p);
        sqlbuf_putc(sb, *p);
    }
    sqlbuf_putc(sb, quote);
}

void sqlbuf_ident(sqlbuf_t *sb, const char *name)
{
    quoted(sb, name, '"', false);
}

void sqlbuf_literal(sqlbuf_t *sb, const char *value)
{
    bool backslash = strchr(value, '\\') != NULL;
    if (backslash)
        sqlbuf_putc(sb, 'E');
    quoted(sb, value, '\'', backslash);
}

const char *sqlbuf_str(const sqlbuf_t *sb)
{
    return sb->data && !sb->failed ? sb->data : "";
}

char *sqlbuf_take(sqlbuf_t *sb)
{
    if (!sb->failed && !sb->data)
        reserve(sb, 0);
    char *text = sb->failed ? NULL : sb->data;
    if (sb->failed)
        free(sb->data);
    if (text)
        text[sb->len] = '\0';
    *sb = (sqlbuf_t){0};
    return text;
}

void sqlbuf_free(sqlbuf_t *sb)
{
    free(sb->data);
    *sb = (sqlbuf_t){0};
}
