/*
 * dump — run every statement of the corpus (extract.py) through
 * rewrite_statement in a set of sessions and print every field of every
 * result, so two builds of the rewriter can be compared byte for byte.
 * Throwaway tooling, not part of the build: see run.sh.
 *
 * usage: dump CORPUS_DIR > out
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "branch/catalog.h"
#include "rewrite/rewrite.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 65536 > cap) {
            cap = (n + 65536) * 2;
            buf = realloc(buf, cap + 1);
            if (!buf)
                exit(3);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* \N = NULL; \\ \t \n unescaped in place */
static char *unescape(char *s)
{
    if (strcmp(s, "\\N") == 0)
        return NULL;
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '\\' && p[1]) {
            p++;
            *o++ = *p == 't' ? '\t' : *p == 'n' ? '\n' : *p;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return s;
}

typedef struct rows {
    const char **v;
    int n;
    char *text; /* the file the values point into */
} rows_t;

static rows_t read_rows(const char *dir, const char *name)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    char *text = slurp(path, &len);
    rows_t r = {.text = text};
    int cap = 0;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        if (r.n + 1 > cap) {
            cap = cap ? cap * 2 : 256;
            r.v = realloc(r.v, (size_t)cap * 5 * sizeof *r.v);
        }
        char *f = line;
        for (int k = 0; k < 5; k++) {
            char *tab = strchr(f, '\t');
            if (tab)
                *tab = '\0';
            r.v[r.n * 5 + k] = unescape(f);
            f = tab ? tab + 1 : f + strlen(f);
        }
        r.n++;
    }
    return r;
}

static catalog_t load(rows_t r, bool main)
{
    catalog_t c;
    const char **v = malloc((size_t)r.n * 5 * sizeof *v);
    memcpy(v, r.v, (size_t)r.n * 5 * sizeof *v);
    if (main) {
        v[1] = "0";
        v[2] = "main";
        v[3] = "0";
    }
    if (!catalog_load(&c, r.n, 5, v)) {
        fprintf(stderr, "catalog does not load\n");
        exit(2);
    }
    free(v);
    return c;
}

static void field(const char *name, const char *value)
{
    if (value)
        printf("%s: %s\n", name, value);
    else
        printf("%s: (null)\n", name);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: dump CORPUS_DIR\n");
        return 2;
    }
    const char *dir = argv[1];
    rows_t rrew = read_rows(dir, "cat_rewrite.tsv"), rdml = read_rows(dir, "cat_dml.tsv"),
           rint = read_rows(dir, "cat_integ.tsv"), rwid = read_rows(dir, "cat_wide.tsv");
    catalog_t rew_br = load(rrew, false), rew_main = load(rrew, true), dml = load(rdml, false),
              int_br = load(rint, false), int_main = load(rint, true), wide = load(rwid, false);
    struct {
        const char *name;
        rw_session_t s;
    } sessions[] = {
        {"rewrite/branch", {.cat = &rew_br, .on_branch = true}},
        {"rewrite/main", {.cat = &rew_main}},
        {"nocat/branch", {.on_branch = true}},
        {"nocat/main", {0}},
        {"rewrite/as_of_branch", {.cat = &rew_br, .on_branch = true, .read_only = true}},
        {"rewrite/as_of_main", {.cat = &rew_main, .read_only = true}},
        {"dml/branch", {.cat = &dml, .on_branch = true}},
        {"integ/branch", {.cat = &int_br, .on_branch = true}},
        {"integ/main", {.cat = &int_main}},
        {"integ/as_of_branch", {.cat = &int_br, .on_branch = true, .read_only = true}},
        {"wide/branch", {.cat = &wide, .on_branch = true}},
    };
    int nsessions = (int)(sizeof sessions / sizeof sessions[0]);

    char spath[4096];
    snprintf(spath, sizeof spath, "%s/statements", dir);
    size_t len;
    char *all = slurp(spath, &len);
    int nstmts = 0, rewritten = 0, errors = 0, results = 0;
    for (size_t off = 0; off < len; off += strlen(all + off) + 1) {
        const char *sql = all + off;
        nstmts++;
        printf("######## statement %d (needs_parse %d)\n%s\n", nstmts,
               rewrite_needs_parse(sql, strlen(sql)), sql);
        for (int k = 0; k < nsessions; k++) {
            char *copy = strdup(sql);
            rw_result_t r;
            rw_action_t a = rewrite_statement(&sessions[k].s, copy, &r);
            results++;
            rewritten += a == RW_REWRITTEN;
            errors += a == RW_ERROR;
            printf("==== %s: action %d flags %u sqlstate [%s] local %d as_of %d tags [%s]\n",
                   sessions[k].name, (int)a, r.flags, r.sqlstate, r.is_local, r.as_of, r.tags);
            field("sql", r.sql);
            field("setup", r.setup);
            field("message", r.message);
            field("hint", r.hint);
            field("detail", r.detail);
            field("value", r.value);
            rewrite_result_free(&r);
            free(copy);
        }
    }
    fprintf(stderr, "%d statements x %d sessions = %d results (%d rewritten, %d errors)\n", nstmts,
            nsessions, results, rewritten, errors);
    free(all);
    catalog_t *cats[] = {&rew_br, &rew_main, &dml, &int_br, &int_main, &wide};
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
        catalog_free(cats[i]);
    rows_t *rows[] = {&rrew, &rdml, &rint, &rwid};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        free(rows[i]->v);
        free(rows[i]->text);
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
