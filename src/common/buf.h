/*
 * buf — a growable byte buffer with a read offset, reused for the life of a
 * connection (no malloc per message: it only grows, and compacts in place).
 * OOM is reported by a false return so one connection fails, not the process.
 */
#ifndef EPOCH_COMMON_BUF_H
#define EPOCH_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    char *data;
    size_t off; /* first unconsumed byte */
    size_t len; /* end of valid bytes */
    size_t cap;
} buf_t;

void buf_free(buf_t *b);
/* Ensure room for `extra` more bytes at the end (compacts, then grows). */
bool buf_reserve(buf_t *b, size_t extra) __attribute__((warn_unused_result));
bool buf_append(buf_t *b, const void *p, size_t n) __attribute__((warn_unused_result));
/* Append printf-formatted text (no NUL). */
bool buf_appendf(buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
static inline size_t buf_avail(const buf_t *b)
{
    return b->len - b->off;
}
static inline char *buf_head(const buf_t *b)
{
    return b->data + b->off;
}
static inline void buf_consume(buf_t *b, size_t n)
{
    b->off += n;
    if (b->off == b->len)
        b->off = b->len = 0;
}
static inline void buf_reset(buf_t *b)
{
    b->off = b->len = 0;
}

/* Message builder on top of buf: type byte, length placeholder, body, fix. */
bool buf_msg_begin(buf_t *b, char type, size_t *start) __attribute__((warn_unused_result));
bool buf_put_u8(buf_t *b, uint8_t v) __attribute__((warn_unused_result));
bool buf_put_i16(buf_t *b, int16_t v) __attribute__((warn_unused_result));
bool buf_put_i32(buf_t *b, int32_t v) __attribute__((warn_unused_result));
bool buf_put_str(buf_t *b, const char *s) __attribute__((warn_unused_result)); /* with NUL */
void buf_msg_end(buf_t *b, size_t start);

static inline uint32_t rd_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}
static inline uint16_t rd_u16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint16_t)((u[0] << 8) | u[1]);
}
static inline void wr_u32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

#endif
