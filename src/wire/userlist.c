/*
 * userlist — the auth_file of userlist mode, in PgBouncer's format:
 *
 *     "user" "secret"     ; anything after the second field is ignored
 *
 * "" inside quotes is a literal quote; blank lines and lines whose first
 * non-blank character is ';' or '#' are comments. The secret is a plaintext
 * password, "md5" + 32 hex, or a SCRAM-SHA-256 verifier.
 *
 * Contract: the file is read once (at start and on reload) into a sorted
 * array; lookups are a binary search. A malformed file is refused as a whole
 * with "path:line: reason" — never with the secret in the message — so a
 * typo cannot silently lock users out or let them in. Secrets are wiped
 * before their memory is freed. No global state.
 */
#include "common/text.h"
#include "wire/auth.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

typedef struct userlist_entry {
    char *user;
    char *secret;
    size_t secret_len;
    unsigned line; /* for duplicate reports */
} userlist_entry_t;

struct userlist {
    userlist_entry_t *entries; /* sorted by user */
    size_t count;
    size_t cap;
};

static bool is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\v' || ch == '\f';
}

static void set_error(char *err, size_t errcap, const char *path, unsigned line, const char *reason)
{
    if (!err || errcap == 0)
        return;
    if (line > 0)
        snprintf(err, errcap, "%s:%u: %s", path, line, reason);
    else
        snprintf(err, errcap, "%s: %s", path, reason);
}

/*
 * Parse a "..." field at *pp into a new string ("" is a literal quote) and
 * advance *pp past the closing quote. NULL with *reason set on error.
 */
static char *parse_quoted(const char **pp, size_t *outlen, const char *what, const char **reason)
{
    const char *p = *pp;
    if (*p != '"') {
        *reason = what;
        return NULL;
    }
    p++;
    size_t n = 0;
    const char *q = p;
    for (;;) {
        if (*q == '\0') {
            *reason = "unterminated quoted string";
            return NULL;
        }
        if (*q == '"') {
            if (q[1] != '"')
                break;
            q++;
        }
        n++;
        q++;
    }
    char *s = malloc(n + 1);
    if (!s) {
        *reason = "out of memory";
        return NULL;
    }
    size_t i = 0;
    while (p < q) {
        if (*p == '"')
            p++; /* first of a "" pair */
        s[i++] = *p++;
    }
    s[i] = '\0';
    *outlen = n;
    *pp = q + 1;
    return s;
}

static void entry_wipe(userlist_entry_t *e)
{
    if (e->secret) {
        OPENSSL_cleanse(e->secret, e->secret_len);
        free(e->secret);
    }
    free(e->user);
    e->user = e->secret = NULL;
}

/* Reject secrets that look like a hash or verifier but are not valid: used
 * as plaintext (what PostgreSQL would do) they would turn a typo into a
 * password equal to the stored text. */
static const char *check_secret(const char *secret)
{
    if (HAS_PREFIX(secret, "SCRAM-SHA-256$") && auth_secret_kind(secret) != SECRET_SCRAM)
        return "invalid SCRAM-SHA-256 verifier";
    if (HAS_PREFIX(secret, "md5") && strlen(secret) == 35 &&
        strspn(secret + 3, "0123456789abcdefABCDEF") == 32 &&
        auth_secret_kind(secret) != SECRET_MD5)
        return "md5 hash must be lowercase hex";
    return NULL;
}

/* Parse one line (NUL-terminated, no newline). Returns false with *reason
 * on a malformed line; *e->user == NULL means a blank or comment line. */
static bool parse_line(const char *line, userlist_entry_t *e, const char **reason)
{
    size_t ulen = 0;
    const char *p = line;

    e->user = e->secret = NULL;
    while (is_blank(*p))
        p++;
    if (*p == '\0' || *p == ';' || *p == '#')
        return true;
    e->user = parse_quoted(&p, &ulen, "expected a quoted user name", reason);
    if (!e->user)
        return false;
    if (ulen == 0) {
        *reason = "empty user name";
        goto fail;
    }
    while (is_blank(*p))
        p++;
    e->secret =
        parse_quoted(&p, &e->secret_len, "expected a quoted secret after the user name", reason);
    if (!e->secret)
        goto fail;
    *reason = check_secret(e->secret);
    if (*reason)
        goto fail;
    return true; /* the rest of the line is ignored, as in PgBouncer */
fail:
    entry_wipe(e);
    return false;
}

static bool append(userlist_t *ul, const userlist_entry_t *e)
{
    if (ul->count == ul->cap) {
        size_t cap = ul->cap ? ul->cap * 2 : 16;
        if (cap > SIZE_MAX / sizeof(*ul->entries))
            return false;
        userlist_entry_t *n = realloc(ul->entries, cap * sizeof(*n));
        if (!n)
            return false;
        ul->entries = n;
        ul->cap = cap;
    }
    ul->entries[ul->count++] = *e;
    return true;
}

static int entry_cmp(const void *a, const void *b)
{
    const userlist_entry_t *x = a, *y = b;
    int c = strcmp(x->user, y->user);
    if (c != 0)
        return c;
    return (x->line > y->line) - (x->line < y->line);
}

userlist_t *userlist_load(const char *path, char *err, size_t errcap)
{
    char *line = NULL;
    size_t linecap = 0;
    unsigned lineno = 0;
    ssize_t n;
    /* Our own stdio buffer, so that it can be wiped like the line buffer. */
    char iobuf[4096];

    if (!path) {
        set_error(err, errcap, "(null)", 0, "no userlist file given");
        return NULL;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        char buf[128];
        set_error(err, errcap, path, 0, strerror_r(errno, buf, sizeof(buf)));
        return NULL;
    }
    setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
    userlist_t *ul = calloc(1, sizeof(*ul));
    if (!ul) {
        set_error(err, errcap, path, 0, "out of memory");
        goto fail;
    }
    while ((n = getline(&line, &linecap, f)) >= 0) {
        userlist_entry_t e;
        const char *reason = NULL;
        lineno++;
        if (n > 0 && line[n - 1] == '\n')
            line[--n] = '\0';
        if (memchr(line, '\0', (size_t)n)) {
            set_error(err, errcap, path, lineno, "NUL byte in line");
            goto fail;
        }
        if (!parse_line(line, &e, &reason)) {
            set_error(err, errcap, path, lineno, reason);
            goto fail;
        }
        if (!e.user)
            continue;
        e.line = lineno;
        if (!append(ul, &e)) {
            entry_wipe(&e);
            set_error(err, errcap, path, lineno, "out of memory");
            goto fail;
        }
    }
    if (ferror(f)) {
        set_error(err, errcap, path, 0, "read error");
        goto fail;
    }

    if (ul->count > 1)
        qsort(ul->entries, ul->count, sizeof(*ul->entries), entry_cmp);
    for (size_t i = 1; i < ul->count; i++) {
        if (strcmp(ul->entries[i - 1].user, ul->entries[i].user) == 0) {
            char why[64];
            snprintf(why, sizeof(why), "duplicate user name (first on line %u)",
                     ul->entries[i - 1].line);
            set_error(err, errcap, path, ul->entries[i].line, why);
            goto fail;
        }
    }
    if (line) {
        OPENSSL_cleanse(line, linecap);
        free(line);
    }
    fclose(f);
    OPENSSL_cleanse(iobuf, sizeof(iobuf));
    return ul;

fail:
    if (line) {
        OPENSSL_cleanse(line, linecap);
        free(line);
    }
    fclose(f);
    OPENSSL_cleanse(iobuf, sizeof(iobuf));
    userlist_free(ul);
    return NULL;
}

void userlist_free(userlist_t *ul)
{
    if (!ul)
        return;
    for (size_t i = 0; i < ul->count; i++)
        entry_wipe(&ul->entries[i]);
    free(ul->entries);
    free(ul);
}

const char *userlist_lookup(const userlist_t *ul, const char *user)
{
    if (!ul || !user)
        return NULL;
    size_t lo = 0, hi = ul->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(user, ul->entries[mid].user);
        if (c == 0)
            return ul->entries[mid].secret;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
