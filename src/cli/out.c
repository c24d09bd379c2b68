/*
 * out — see out.h.
 */
#include "cli/out.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* type OIDs (pg_type.dat): stable across PostgreSQL versions */
enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_OID = 26,
    OID_JSON = 114,
    OID_FLOAT4 = 700,
    OID_FLOAT8 = 701,
    OID_TEXTARRAY = 1009,
    OID_JSONB = 3802,
};

void out_json(json_object *o)
{
    puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                               JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(o);
}

json_object *out_str(const char *s)
{
    return s ? json_object_new_string(s) : NULL;
}

json_object *out_object(const char *key, ...)
{
    json_object *o = json_object_new_object();
    va_list ap;
    va_start(ap, key);
    for (; key; key = va_arg(ap, const char *))
        json_object_object_add(o, key, va_arg(ap, json_object *));
    va_end(ap);
    return o;
}

/* text[] in PostgreSQL's array syntax: {a,"b c",NULL} (one dimension) */
static json_object *text_array(const char *s)
{
    json_object *arr = json_object_new_array();
    if (*s != '{')
        return arr;
    s++;
    size_t n = strlen(s);
    char *item = malloc(n + 1);
    if (!item)
        return arr;
    while (*s && *s != '}') {
        size_t k = 0;
        bool quoted = *s == '"';
        if (quoted) {
            for (s++; *s && *s != '"'; s++) {
                if (*s == '\\' && s[1])
                    s++;
                item[k++] = *s;
            }
            if (*s == '"')
                s++;
        } else {
            while (*s && *s != ',' && *s != '}')
                item[k++] = *s++;
        }
        item[k] = '\0';
        if (!quoted && strcmp(item, "NULL") == 0)
            json_object_array_add(arr, NULL);
        else
            json_object_array_add(arr, json_object_new_string(item));
        if (*s == ',')
            s++;
    }
    free(item);
    return arr;
}

json_object *out_value(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return NULL;
    const char *v = PQgetvalue(res, row, col);
    switch (PQftype(res, col)) {
    case OID_BOOL:
        return json_object_new_boolean(v[0] == 't');
    case OID_INT2:
    case OID_INT4:
    case OID_INT8:
    case OID_OID:
        return json_object_new_int64(strtoll(v, NULL, 10));
    case OID_FLOAT4:
    case OID_FLOAT8:
        return json_object_new_double(strtod(v, NULL));
    case OID_JSON:
    case OID_JSONB: {
        json_object *o = json_tokener_parse(v);
        return o ? o : json_object_new_string(v);
    }
    case OID_TEXTARRAY:
        return text_array(v);
    default:
        return json_object_new_string(v);
    }
}

json_object *out_row(const PGresult *res, int row)
{
    json_object *o = json_object_new_object();
    for (int c = 0; c < PQnfields(res); c++)
        json_object_object_add(o, PQfname(res, c), out_value(res, row, c));
    return o;
}

json_object *out_rows(const PGresult *res)
{
    json_object *arr = json_object_new_array();
    for (int r = 0; r < PQntuples(res); r++)
        json_object_array_add(arr, out_row(res, r));
    return arr;
}

void out_list(const cli_t *cli, const PGresult *res, out_text_fn text)
{
    if (cli->args.format == FORMAT_JSON) {
        out_json(out_rows(res));
        return;
    }
    for (int r = 0; r < PQntuples(res); r++)
        text(cli, res, r);
}

void out_first(const cli_t *cli, const PGresult *res, out_text_fn text)
{
    if (cli->args.format == FORMAT_JSON)
        out_json(PQntuples(res) ? out_row(res, 0) : json_object_new_object());
    else if (PQntuples(res))
        text(cli, res, 0);
}

const char *out_get(const PGresult *res, int row, const char *column)
{
    int c = PQfnumber(res, column);
    return c < 0 ? "" : PQgetvalue(res, row, c);
}

bool out_isnull(const PGresult *res, int row, const char *column)
{
    int c = PQfnumber(res, column);
    return c < 0 || PQgetisnull(res, row, c);
}

/* display width: UTF-8 code points (no East Asian wide forms) */
static int width(const char *s)
{
    int w = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            w++;
    return w;
}

static void pad(int n)
{
    for (int i = 0; i < n; i++)
        putchar(' ');
}

void out_table(const PGresult *res)
{
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        puts(PQcmdStatus((PGresult *)res));
        return;
    }
    int nf = PQnfields(res), nt = PQntuples(res);
    int *w = calloc((size_t)nf + 1, sizeof(int));
    if (!w)
        return;
    for (int c = 0; c < nf; c++) {
        w[c] = width(PQfname(res, c));
        for (int r = 0; r < nt; r++) {
            int x = width(PQgetvalue(res, r, c));
            if (x > w[c])
                w[c] = x;
        }
    }
    for (int c = 0; c < nf; c++) {
        const char *name = PQfname(res, c);
        int left = (w[c] - width(name)) / 2;
        printf("%s", c ? " | " : " ");
        pad(left);
        fputs(name, stdout);
        if (c < nf - 1)
            pad(w[c] - width(name) - left);
    }
    putchar('\n');
    for (int c = 0; c < nf; c++) {
        fputs(c ? "-+-" : "-", stdout);
        for (int i = 0; i < w[c]; i++)
            putchar('-');
    }
    puts(nf ? "-" : "");
    for (int r = 0; r < nt; r++) {
        for (int c = 0; c < nf; c++) {
            const char *v = PQgetvalue(res, r, c);
            Oid t = PQftype(res, c);
            bool num = t == OID_INT2 || t == OID_INT4 || t == OID_INT8 || t == OID_FLOAT4 ||
                       t == OID_FLOAT8 || t == 1700;
            fputs(c ? " | " : " ", stdout);
            if (num)
                pad(w[c] - width(v));
            fputs(v, stdout);
            if (!num && c < nf - 1)
                pad(w[c] - width(v));
        }
        putchar('\n');
    }
    printf("(%d row%s)\n", nt, nt == 1 ? "" : "s");
    free(w);
}

static void csv_field(const char *v)
{
    if (!strpbrk(v, ",\"\r\n")) {
        fputs(v, stdout);
        return;
    }
    putchar('"');
    for (; *v; v++) {
        if (*v == '"')
            putchar('"');
        putchar(*v);
    }
    putchar('"');
}

void out_csv(const PGresult *res)
{
    int nf = PQnfields(res);
    for (int c = 0; c < nf; c++) {
        if (c)
            putchar(',');
        csv_field(PQfname(res, c));
    }
    putchar('\n');
    for (int r = 0; r < PQntuples(res); r++) {
        for (int c = 0; c < nf; c++) {
            if (c)
                putchar(',');
            if (!PQgetisnull(res, r, c))
                csv_field(PQgetvalue(res, r, c));
        }
        putchar('\n');
    }
}

void out_result(const cli_t *cli, const PGresult *res)
{
    switch (cli->args.format) {
    case FORMAT_JSON:
        out_json(out_rows(res));
        break;
    case FORMAT_CSV:
        out_csv(res);
        break;
    case FORMAT_TEXT:
        out_table(res);
        break;
    }
}

const char *out_color(const cli_t *cli, color_t c)
{
    static const char *const codes[] = {"\033[m",   "\033[31m", "\033[32m",
                                        "\033[33m", "\033[36m", "\033[1m"};
    return cli->color ? codes[c] : "";
}
