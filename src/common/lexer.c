/*
 * lexer — token-level helpers over SQL text (PostgreSQL's lexical rules for
 * identifiers, string constants, dollar quotes and comments).
 *
 * Must never: read past the terminating NUL, whatever the input.
 */
#include "common/text.h"
#include "common/lexer.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool ident_start(unsigned char c)
{
    return isalpha(c) || c == '_' || c >= 0x80;
}

static bool ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

bool lex_ident_char(unsigned char c)
{
    return ident_char(c);
}

size_t lex_skip_blank(const char *sql, size_t pos)
{
    for (;;) {
        while (sql[pos] && isspace((unsigned char)sql[pos]))
            pos++;
        if (sql[pos] == '-' && sql[pos + 1] == '-') {
            while (sql[pos] && sql[pos] != '\n')
                pos++;
            continue;
        }
        if (sql[pos] == '/' && sql[pos + 1] == '*') {
            int depth = 1;
            pos += 2;
            while (sql[pos] && depth > 0) {
                if (sql[pos] == '/' && sql[pos + 1] == '*') {
                    depth++;
                    pos += 2;
                } else if (sql[pos] == '*' && sql[pos + 1] == '/') {
                    depth--;
                    pos += 2;
                } else {
                    pos++;
                }
            }
            continue;
        }
        return pos;
    }
}

/* End of one identifier at pos (quoted, U&"..." or bare), or pos. */
static size_t ident_end(const char *sql, size_t pos)
{
    if ((sql[pos] == 'U' || sql[pos] == 'u') && sql[pos + 1] == '&' && sql[pos + 2] == '"') {
        size_t q = ident_end(sql, pos + 2);
        if (q == pos + 2)
            return pos;
        /* an optional UESCAPE 'c' belongs to the name */
        size_t u = lex_skip_blank(sql, q);
        if (HAS_PREFIX_CI(sql + u, "uescape") &&
            !ident_char((unsigned char)sql[u + LIT_LEN("uescape")])) {
            size_t lit = lex_skip_blank(sql, u + 7);
            if (sql[lit] == '\'' && sql[lit + 1] && sql[lit + 2] == '\'')
                return lit + 3;
        }
        return q;
    }
    if (sql[pos] == '"') {
        size_t p = pos + 1;
        while (sql[p]) {
            if (sql[p] == '"') {
                if (sql[p + 1] == '"') {
                    p += 2;
                    continue;
                }
                return p + 1;
            }
            p++;
        }
        return pos; /* unterminated */
    }
    if (!ident_start((unsigned char)sql[pos]))
        return pos;
    size_t p = pos + 1;
    while (ident_char((unsigned char)sql[p]))
        p++;
    return p;
}

size_t lex_name_end(const char *sql, size_t pos)
{
    size_t end = ident_end(sql, pos);
    if (end == pos)
        return pos;
    for (;;) {
        size_t dot = lex_skip_blank(sql, end);
        if (sql[dot] != '.')
            return end;
        size_t next = lex_skip_blank(sql, dot + 1);
        size_t e = ident_end(sql, next);
        if (e == next)
            return end;
        end = e;
    }
}

/* The end of a string literal whose text starts at p (past the opening
 * quote): past the closing quote, or at the NUL when unterminated. A doubled
 * quote is a quote; with escapes (E'…', or standard_conforming_strings off)
 * a backslash escapes the next character. */
static size_t string_end(const char *sql, size_t p, bool escapes)
{
    while (sql[p]) {
        if (escapes && sql[p] == '\\' && sql[p + 1]) {
            p += 2;
            continue;
        }
        if (sql[p] == '\'') {
            if (sql[p + 1] != '\'')
                return p + 1;
            p += 2;
            continue;
        }
        p++;
    }
    return p;
}

/* Skip a literal or quoted name starting at pos; returns its end, or pos. */
static size_t skip_quoted(const char *sql, size_t pos)
{
    char c = sql[pos];
    if (c == '"')
        return ident_end(sql, pos);
    if (c == '\'' || ((c == 'E' || c == 'e') && sql[pos + 1] == '\'' &&
                      (pos == 0 || !ident_char((unsigned char)sql[pos - 1]))))
        return string_end(sql, pos + (c == '\'' ? 1 : 2), c != '\'');
    if (c == '$' && (pos == 0 || !ident_char((unsigned char)sql[pos - 1]))) {
        size_t t = pos + 1;
        while (sql[t] && (isalnum((unsigned char)sql[t]) || sql[t] == '_'))
            t++;
        if (sql[t] != '$' || (t > pos + 1 && isdigit((unsigned char)sql[pos + 1])))
            return pos;
        size_t taglen = t + 1 - pos;
        for (const char *q = sql + t + 1; (q = strchr(q, '$')) != NULL; q++)
            if (strncmp(q, sql + pos, taglen) == 0)
                return (size_t)(q - sql) + taglen;
        return strlen(sql);
    }
    return pos;
}

/* The end of the (…) or […] group opening at pos (just past its closer),
 * skipping quoted text and comments and counting both kinds of nesting;
 * pos when there is none. */
static size_t group_end(const char *sql, size_t pos, char open, char close)
{
    if (sql[pos] != open)
        return pos;
    int depth = 0;
    size_t p = pos;
    while (sql[p]) {
        size_t q = skip_quoted(sql, p);
        if (q == p &&
            ((sql[p] == '-' && sql[p + 1] == '-') || (sql[p] == '/' && sql[p + 1] == '*')))
            q = lex_skip_blank(sql, p);
        if (q != p) {
            p = q;
            continue;
        }
        if (sql[p] == '(' || sql[p] == '[')
            depth++;
        else if ((sql[p] == ')' || sql[p] == ']') && --depth == 0)
            return sql[p] == close ? p + 1 : pos;
        p++;
    }
    return pos;
}

size_t lex_paren_end(const char *sql, size_t pos)
{
    return group_end(sql, pos, '(', ')');
}

size_t lex_bracket_end(const char *sql, size_t pos)
{
    return group_end(sql, pos, '[', ']');
}

size_t lex_keyword_before(const char *sql, size_t pos, const char *kw)
{
    size_t p = pos;
    while (p > 0 && isspace((unsigned char)sql[p - 1]))
        p--;
    size_t end = p;
    while (p > 0 && ident_char((unsigned char)sql[p - 1]))
        p--;
    size_t n = strlen(kw);
    if (end - p == n && strncasecmp(sql + p, kw, n) == 0)
        return p;
    return pos;
}

char *lex_quote_named_args(const char *sql)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 3 + 1);
    if (!out)
        return NULL;
    size_t o = 0, p = 0;
    bool changed = false;
    while (sql[p]) {
        size_t q = skip_quoted(sql, p);
        if (q == p && sql[p] == '-' && sql[p + 1] == '-')
            q = lex_skip_blank(sql, p);
        if (q == p && sql[p] == '/' && sql[p + 1] == '*')
            q = lex_skip_blank(sql, p);
        if (q != p) {
            memcpy(out + o, sql + p, q - p);
            o += q - p;
            p = q;
            continue;
        }
        if (ident_start((unsigned char)sql[p]) &&
            (p == 0 || !ident_char((unsigned char)sql[p - 1]))) {
            size_t e = ident_end(sql, p);
            size_t after = lex_skip_blank(sql, e);
            if (sql[after] == '=' && sql[after + 1] == '>') {
                out[o++] = '"';
                for (size_t i = p; i < e; i++)
                    out[o++] = (char)tolower((unsigned char)sql[i]);
                out[o++] = '"';
                changed = true;
            } else {
                memcpy(out + o, sql + p, e - p);
                o += e - p;
            }
            p = e;
            continue;
        }
        out[o++] = sql[p++];
    }
    out[o] = '\0';
    if (!changed) {
        free(out);
        return NULL;
    }
    return out;
}

bool lex_contains_ci(const char *sql, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0 || len < n)
        return n == 0;
    unsigned char first = (unsigned char)tolower((unsigned char)needle[0]);
    for (size_t i = 0; i + n <= len; i++)
        if ((unsigned char)tolower((unsigned char)sql[i]) == first &&
            strncasecmp(sql + i, needle, n) == 0)
            return true;
    return false;
}

/* Copy-through tokens for templating: comments, quoted names, E'' strings,
 * dollar quotes. Returns the end of such a token at p, or p. */
static size_t skip_verbatim(const char *sql, size_t p)
{
    if ((sql[p] == '-' && sql[p + 1] == '-') || (sql[p] == '/' && sql[p + 1] == '*'))
        return lex_skip_blank(sql, p);
    if (sql[p] == '\'' && (p == 0 || !ident_char((unsigned char)sql[p - 1])))
        return p; /* a plain string: the caller templates it */
    return skip_quoted(sql, p);
}

static size_t number_end(const char *sql, size_t p)
{
    size_t e = p;
    while (isdigit((unsigned char)sql[e]))
        e++;
    if (sql[e] == '.' && sql[e + 1] != '.') {
        e++;
        while (isdigit((unsigned char)sql[e]))
            e++;
    }
    if ((sql[e] == 'e' || sql[e] == 'E') &&
        (isdigit((unsigned char)sql[e + 1]) ||
         ((sql[e + 1] == '+' || sql[e + 1] == '-') && isdigit((unsigned char)sql[e + 2])))) {
        e += 2;
        while (isdigit((unsigned char)sql[e]))
            e++;
    }
    return e;
}

bool lex_template(const char *sql, int first_param, char **tmpl, char ***lits, int *nlits)
{
    size_t len = strlen(sql);
    char *out = malloc(len * 4 + 16);
    char **found = NULL;
    int n = 0;
    if (!out)
        return false;
    size_t o = 0, p = 0;
    while (sql[p]) {
        size_t q = skip_verbatim(sql, p);
        if (q != p) {
            memcpy(out + o, sql + p, q - p);
            o += q - p;
            p = q;
            continue;
        }
        size_t end = p;
        bool prev_ident = p > 0 && (ident_char((unsigned char)sql[p - 1]) || sql[p - 1] == '.');
        if (sql[p] == '\'' && !prev_ident) {
            end = skip_quoted(sql, p);
            if (sql[end] == '\'' || end == p) /* 'a' 'b' continuation or unterminated */
                goto give_up;
        } else if (isdigit((unsigned char)sql[p]) && !prev_ident) {
            end = number_end(sql, p);
            if (ident_char((unsigned char)sql[end]))
                goto give_up;
        } else if (ident_char((unsigned char)sql[p])) {
            while (ident_char((unsigned char)sql[end]))
                end++; /* a whole word, so digits inside names stay */
            memcpy(out + o, sql + p, end - p);
            o += end - p;
            p = end;
            continue;
        }
        if (end == p) {
            out[o++] = sql[p++];
            continue;
        }
        char **grown = realloc(found, (size_t)(n + 1) * sizeof *grown);
        if (!grown)
            goto give_up;
        found = grown;
        found[n] = strndup(sql + p, end - p);
        if (!found[n])
            goto give_up;
        n++;
        o += (size_t)sprintf(out + o, "$%d", first_param + n - 1);
        p = end;
    }
    out[o] = '\0';
    if (n == 0)
        goto give_up;
    *tmpl = out;
    *lits = found;
    *nlits = n;
    return true;
give_up:
    for (int i = 0; i < n; i++)
        free(found[i]);
    free(found);
    free(out);
    return false;
}

int lex_max_param(const char *sql)
{
    int max = 0;
    for (size_t p = 0; sql[p];) {
        size_t q = skip_quoted(sql, p);
        if (q == p &&
            ((sql[p] == '-' && sql[p + 1] == '-') || (sql[p] == '/' && sql[p + 1] == '*')))
            q = lex_skip_blank(sql, p);
        if (q != p) {
            p = q;
            continue;
        }
        if (sql[p] == '$' && isdigit((unsigned char)sql[p + 1])) {
            int v = atoi(sql + p + 1);
            if (v > max)
                max = v;
            p++;
            while (isdigit((unsigned char)sql[p]))
                p++;
            continue;
        }
        p++;
    }
    return max;
}

/* One pass of lex_fill: with out NULL only measures. Plain runs are copied
 * whole (a char-by-char stdio copy cost 15 µs per statement). */
static size_t fill_pass(const char *tmpl, int first_param, char *const *lits, int nlits, char *out)
{
    size_t o = 0, run = 0, p = 0;
#define FLUSH_RUN()                                                                                \
    do {                                                                                           \
        if (out && run)                                                                            \
            memcpy(out + o, tmpl + p - run, run);                                                  \
        o += run;                                                                                  \
        run = 0;                                                                                   \
    } while (0)
    while (tmpl[p]) {
        char c = tmpl[p];
        if (c == '\'' || c == '"' || c == 'E' || c == 'e' || c == '$') {
            size_t q = skip_quoted(tmpl, p);
            if (q != p) {
                run += q - p;
                p = q;
                continue;
            }
        }
        if (c == '$' && isdigit((unsigned char)tmpl[p + 1]) &&
            (p == 0 || !ident_char((unsigned char)tmpl[p - 1]))) {
            size_t e = p + 1;
            while (isdigit((unsigned char)tmpl[e]))
                e++;
            int k = atoi(tmpl + p + 1);
            if (k >= first_param && k < first_param + nlits) {
                FLUSH_RUN();
                size_t l = strlen(lits[k - first_param]);
                if (out)
                    memcpy(out + o, lits[k - first_param], l);
                o += l;
                p = e;
                continue;
            }
            run += e - p;
            p = e;
            continue;
        }
        run++;
        p++;
    }
    FLUSH_RUN();
#undef FLUSH_RUN
    return o;
}

char *lex_fill(const char *tmpl, int first_param, char *const *lits, int nlits)
{
    /* a constant may appear several times in the rewritten template (key
     * conditions are copied into the overlay): measure first */
    size_t len = fill_pass(tmpl, first_param, lits, nlits, NULL);
    char *out = malloc(len + 1);
    if (!out)
        return NULL;
    fill_pass(tmpl, first_param, lits, nlits, out);
    out[len] = '\0';
    return out;
}

/* Walk [from, to) at depth 0; calls visit(pos) for each depth-0 position
 * that starts a bare word or a punctuation character. */
static size_t scan_top(const char *sql, size_t from, size_t to,
                       bool (*visit)(const char *, size_t, void *), void *arg)
{
    int depth = 0;
    size_t p = from;
    while (p < to && sql[p]) {
        size_t q = skip_quoted(sql, p);
        if (q == p &&
            ((sql[p] == '-' && sql[p + 1] == '-') || (sql[p] == '/' && sql[p + 1] == '*')))
            q = lex_skip_blank(sql, p);
        if (q != p) {
            p = q;
            continue;
        }
        char c = sql[p];
        if (c == '(' || c == '[') {
            depth++;
            p++;
            continue;
        }
        if (c == ')' || c == ']') {
            depth--;
            p++;
            continue;
        }
        if (depth == 0 && visit(sql, p, arg))
            return p;
        if (ident_start((unsigned char)c)) {
            while (p < to && ident_char((unsigned char)sql[p]))
                p++;
            continue;
        }
        p++;
    }
    return to;
}

struct kw_arg {
    const char *kw;
    size_t from;
};

static bool match_kw(const char *sql, size_t p, void *arg)
{
    const struct kw_arg *k = arg;
    size_t n = strlen(k->kw);
    if (strncasecmp(sql + p, k->kw, n) != 0 || ident_char((unsigned char)sql[p + n]) ||
        (p > 0 && ident_char((unsigned char)sql[p - 1])))
        return false;
    if (strcasecmp(k->kw, "from") == 0 && lex_keyword_before(sql, p, "distinct") != p)
        return false; /* IS [NOT] DISTINCT FROM */
    return true;
}

size_t lex_find_keyword(const char *sql, size_t from, size_t to, const char *kw)
{
    struct kw_arg k = {kw, from};
    return scan_top(sql, from, to, match_kw, &k);
}

struct ch_arg {
    char ch;
    size_t *pos;
    int max, n;
};

static bool match_ch(const char *sql, size_t p, void *arg)
{
    struct ch_arg *a = arg;
    if (sql[p] == a->ch && a->n < a->max)
        a->pos[a->n++] = p;
    return false;
}

int lex_find_char(const char *sql, size_t from, size_t to, char ch, size_t *pos, int max)
{
    struct ch_arg a = {ch, pos, max, 0};
    scan_top(sql, from, to, match_ch, &a);
    return a.n;
}

size_t lex_constant_end(const char *sql, size_t pos)
{
    size_t p = pos;
    if (sql[p] == '$' && isdigit((unsigned char)sql[p + 1])) {
        p++;
        while (isdigit((unsigned char)sql[p]))
            p++;
        return p;
    }
    if (sql[p] == '\'' || ((sql[p] == 'E' || sql[p] == 'e') && sql[p + 1] == '\''))
        return skip_quoted(sql, p);
    if (sql[p] == '-')
        p = lex_skip_blank(sql, p + 1);
    if (isdigit((unsigned char)sql[p]) || (sql[p] == '.' && isdigit((unsigned char)sql[p + 1])))
        return number_end(sql, p);
    return pos;
}

size_t lex_token_end(const char *sql, size_t pos, bool std_strings, bool *word)
{
    unsigned char ch = (unsigned char)sql[pos];
    *word = false;
    if (!ch)
        return pos;
    if (ch == '\'')
        return string_end(sql, pos + 1, !std_strings);
    if (ch == '"') {
        size_t e = ident_end(sql, pos);
        return e != pos ? e : pos + strlen(sql + pos); /* unterminated: the rest */
    }
    size_t q = skip_quoted(sql, pos); /* E'…', $tag$…$tag$ */
    if (q != pos)
        return q;
    size_t p = pos + 1;
    if (ident_start(ch)) {
        while (ident_char((unsigned char)sql[p]))
            p++;
        *word = true;
    } else if (isdigit(ch)) {
        while (isalnum((unsigned char)sql[p]) || sql[p] == '.' || sql[p] == '_')
            p++;
    }
    return p;
}

/* The leading words of CREATE [OR REPLACE] FUNCTION|PROCEDURE, by initial. */
static bool routine_lead(const char first[4])
{
    return first[0] == 'c' &&
           (first[1] == 'f' || first[1] == 'p' ||
            (first[1] == 'o' && first[2] == 'r' && (first[3] == 'f' || first[3] == 'p')));
}

size_t lex_statement_end(const char *sql, size_t pos, bool std_strings, size_t *stmt_end)
{
    char first[4] = {0}; /* initials of the first words if create/or/replace/function/procedure */
    int nwords = 0, parens = 0, begins = 0;
    size_t p = pos;
    *stmt_end = pos;
    while (sql[p = lex_skip_blank(sql, p)]) {
        if (sql[p] == ';' && parens == 0 && begins == 0)
            return p + 1;
        bool word;
        size_t t = lex_token_end(sql, p, std_strings, &word);
        if (sql[p] == '(')
            parens++;
        else if (sql[p] == ')' && parens > 0)
            parens--;
        if (word) {
            size_t n = t - p;
            static const char *const lead[] = {"create", "or", "replace", "function", "procedure"};
            for (int i = 0; nwords < 4 && i < 5; i++)
                if (strlen(lead[i]) == n && strncasecmp(sql + p, lead[i], n) == 0)
                    first[nwords] = lead[i][0];
            nwords++;
            if (routine_lead(first) && parens == 0) {
                if (WORD_IS_CI(sql + p, n, "begin"))
                    begins++;
                else if (WORD_IS_CI(sql + p, n, "case") && begins > 0)
                    begins++;
                else if (WORD_IS_CI(sql + p, n, "end") && begins > 0)
                    begins--;
            }
        }
        *stmt_end = t;
        p = t;
    }
    return p;
}
