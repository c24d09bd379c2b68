/*
 * out — what the client prints: JSON (json-c, pretty, stable keys), aligned
 * tables, CSV, and colors on a terminal. Everything goes to stdout; errors
 * are conn.h's and cli.h's (stderr).
 */
#ifndef EPOCH_CLI_OUT_H
#define EPOCH_CLI_OUT_H

#include <json-c/json.h>

#include "cli/cli.h"

/* Print o as pretty JSON with a newline, and release it. */
void out_json(json_object *o);
/* The value at (row, col) as JSON by its column type: booleans, integers,
 * json/jsonb parsed, text[] as an array, NULL as null, the rest strings. */
json_object *out_value(const PGresult *res, int row, int col);
/* Row as an object keyed by column name. */
json_object *out_row(const PGresult *res, int row);
/* All rows as an array of objects. */
json_object *out_rows(const PGresult *res);
/* A column by name of row as text ("" for NULL). */
const char *out_get(const PGresult *res, int row, const char *column);
/* The column is NULL in row (or absent). */
bool out_isnull(const PGresult *res, int row, const char *column);

/* psql-like aligned table with a "(N rows)" footer. */
void out_table(const PGresult *res);
/* RFC 4180 CSV with a header line. */
void out_csv(const PGresult *res);
/* The result in the chosen --format (text: table). */
void out_result(const cli_t *cli, const PGresult *res);

typedef enum { COLOR_RESET, COLOR_RED, COLOR_GREEN, COLOR_YELLOW, COLOR_CYAN, COLOR_BOLD } color_t;
/* The escape sequence of c when cli->color, else "". */
const char *out_color(const cli_t *cli, color_t c);

/* A JSON string or null. */
json_object *out_str(const char *s);
/* An object of the (key, value) pairs given, in that order, up to a NULL
 * key: out_object("tag", out_str(name), "commit", v, NULL). It takes the
 * values (a NULL value is JSON null). */
json_object *out_object(const char *key, ...);

/* Prints row of res as text (one or more lines). */
typedef void (*out_text_fn)(const cli_t *cli, const PGresult *res, int row);
/* With --format json all rows as an array of objects, else text() for each
 * row. */
void out_list(const cli_t *cli, const PGresult *res, out_text_fn text);
/* With --format json the first row as an object ({} without one), else
 * text() for the first row, if there is one. */
void out_first(const cli_t *cli, const PGresult *res, out_text_fn text);

#endif
