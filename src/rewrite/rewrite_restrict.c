/*
 * rewrite_restrict — restrict_nonsystem_relation_kind on a branch. pg_dump
 * sets it to "view" (SELECT set_config(name, 'view', false) FROM pg_settings
 * WHERE name = 'restrict_nonsystem_relation_kind'); a client may SET it. A
 * branch reads its tables through epoch's own views (functions/access.sql),
 * which the restriction would refuse, so on a branch the kind "view" is
 * dropped from the value; the client's views over tracked tables are spliced
 * into its queries on a branch anyway (docs/privileges.md).
 *
 * Must never: change a setting other than restrict_nonsystem_relation_kind.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "common/lexer.h"
#include "rewrite/rewrite_internal.h"

/* Append to out the kinds of the comma-separated list other than view. */
static void kinds_but_view(sqlbuf_t *out, const char *list)
{
    const char *p = list;
    while (*p) {
        size_t l = strcspn(p, ",");
        const char *a = p, *b = p + l;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b > a && !((size_t)(b - a) == 4 && strncasecmp(a, "view", 4) == 0)) {
            if (sqlbuf_str(out)[0])
                sqlbuf_putc(out, ',');
            sqlbuf_append(out, a, (size_t)(b - a));
        }
        p += l + (p[l] == ',');
    }
}

/* Replace [start, end) by text (sb, taken); OOM fails the statement. */
static void edit_with(walker_t *w, size_t start, size_t end, sqlbuf_t *sb)
{
    char *text = sqlbuf_take(sb);
    if (!text)
        rw_fail_oom(w);
    else
        rw_add_edit(w, start, end, text);
}

void rw_restrict_kinds(walker_t *w, json_object *set, size_t start, size_t len)
{
    const char *kind = rw_get_str(set, "kind");
    if (!w->s->on_branch || !kind || strcmp(kind, "VAR_SET_VALUE") != 0)
        return;
    sqlbuf_t kinds = {0}, sb = {0};
    json_object *args = rw_get(set, "args");
    size_t n = args ? json_object_array_length(args) : 0;
    for (size_t i = 0; i < n; i++) {
        const char *v = rw_get_str(
            rw_get(rw_get(json_object_array_get_idx(args, i), "A_Const"), "sval"), "sval");
        if (!v) { /* not a list of names: PostgreSQL will say what is wrong */
            sqlbuf_free(&kinds);
            return;
        }
        kinds_but_view(&kinds, v);
    }
    sqlbuf_printf(&sb, "SET %srestrict_nonsystem_relation_kind = ",
                  json_object_get_boolean(rw_get(set, "is_local")) ? "LOCAL " : "");
    sqlbuf_literal(&sb, kinds.failed ? "" : sqlbuf_str(&kinds));
    if (kinds.failed)
        sb.failed = true;
    sqlbuf_free(&kinds);
    edit_with(w, start, start + len, &sb);
}

/* Extent of a one-token argument (a constant, a parameter, a column name);
 * false for anything else. */
static bool one_token_arg(walker_t *w, json_object *arg, size_t *start, size_t *end)
{
    json_object *n = rw_get(arg, "A_Const");
    if (!n)
        n = rw_get(arg, "ParamRef");
    if (!n)
        n = rw_get(arg, "ColumnRef");
    int loc = n ? rw_get_int(n, "location", -1) : -1;
    if (loc < 0)
        return false;
    bool word;
    *start = (size_t)loc;
    if (rw_get(arg, "ParamRef")) { /* $n: the lexer reads "$" alone */
        *end = *start + 1;
        while (isdigit((unsigned char)w->sql[*end]))
            (*end)++;
    } else {
        *end = lex_token_end(w->sql, *start, true, &word);
    }
    return *end > *start;
}

/* set_config(setting, value, …): the value goes through
 * epoch._kinds_but_view(setting, value), which drops "view" when the setting
 * is restrict_nonsystem_relation_kind (constants may be parameters here: the
 * statement may be a template, rewrite/cache.c) */
void rw_restrict_kinds_in_calls(walker_t *w, json_object *node)
{
    if (json_object_is_type(node, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(node); i++)
            rw_restrict_kinds_in_calls(w, json_object_array_get_idx(node, i));
        return;
    }
    if (!json_object_is_type(node, json_type_object))
        return;
    json_object *call = rw_get(node, "FuncCall");
    json_object *names = call ? rw_get(call, "funcname") : NULL;
    size_t nn = names ? json_object_array_length(names) : 0;
    const char *fn =
        nn ? rw_get_str(rw_get(json_object_array_get_idx(names, nn - 1), "String"), "sval") : NULL;
    json_object *args = call ? rw_get(call, "args") : NULL;
    size_t s0, e0, s1, e1;
    /* the setting's text is copied: not a parameter (a template's parameters
     * appear once each) */
    if (fn && strcmp(fn, "set_config") == 0 && args && json_object_array_length(args) == 3 &&
        !rw_get(json_object_array_get_idx(args, 0), "ParamRef") &&
        one_token_arg(w, json_object_array_get_idx(args, 0), &s0, &e0) &&
        one_token_arg(w, json_object_array_get_idx(args, 1), &s1, &e1)) {
        sqlbuf_t sb = {0};
        SQLBUF_LIT(&sb, "epoch._kinds_but_view(");
        sqlbuf_append(&sb, w->sql + s0, e0 - s0);
        SQLBUF_LIT(&sb, ", ");
        edit_with(w, s1, s1, &sb);
        rw_add_edit(w, e1, e1, strdup(")"));
    }
    json_object_object_foreach(node, k, v)
    {
        (void)k;
        rw_restrict_kinds_in_calls(w, v);
    }
}
