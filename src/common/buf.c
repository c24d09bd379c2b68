/* buf — see buf.h. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_free(buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

bool buf_reserve(buf_t *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return true;
    if (b->off > 0) {
        /* compact: move the unconsumed tail to the front */
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= extra)
            return true;
    }
    size_t need = b->len + extra;
    size_t ncap = b->cap ? b->cap : 8192;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return false;
        ncap *= 2;
    }
    char *p = realloc(b->data, ncap);
    if (!p)
        return false;
    b->data = p;
    b->cap = ncap;
    return true;
}

bool buf_append(buf_t *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return false;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}

bool buf_appendf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !buf_reserve(b, (size_t)n + 1))
        return false;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return true;
}

bool buf_msg_begin(buf_t *b, char type, size_t *start)
{
    if (!buf_reserve(b, 5))
        return false;
    b->data[b->len++] = type;
    *start = b->len;
    b->len += 4;
    return true;
}

bool buf_put_u8(buf_t *b, uint8_t v)
{
    return buf_append(b, &v, 1);
}

bool buf_put_i16(buf_t *b, int16_t v)
{
    char p[2] = {(char)((uint16_t)v >> 8), (char)v};
    return buf_append(b, p, 2);
}

bool buf_put_i32(buf_t *b, int32_t v)
{
    char p[4];
    wr_u32(p, (uint32_t)v);
    return buf_append(b, p, 4);
}

bool buf_put_str(buf_t *b, const char *s)
{
    return buf_append(b, s, strlen(s) + 1);
}

void buf_msg_end(buf_t *b, size_t start)
{
    wr_u32(b->data + start, (uint32_t)(b->len - start));
}
