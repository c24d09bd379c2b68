/* Unit tests of src/common: the SQL text builder and the statement splitter. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/lexer.h"
#include "common/sqlbuf.h"

Test(sqlbuf, literal_and_ident_are_quoted_safely)
{
    sqlbuf_t sb = {0};
    sqlbuf_literal(&sb, "x'; DROP TABLE t; --");
    SQLBUF_LIT(&sb, " ");
    sqlbuf_literal(&sb, "a\\b");
    SQLBUF_LIT(&sb, " ");
    sqlbuf_ident(&sb, "Odd\"Name");
    SQLBUF_LIT(&sb, " ");
    sqlbuf_ident(&sb, "search_path");
    char *s = sqlbuf_take(&sb);
    cr_assert_str_eq(s, "'x''; DROP TABLE t; --' E'a\\\\b' \"Odd\"\"Name\" \"search_path\"");
    free(s);
}

Test(sqlbuf, printf_grows_past_its_stack_buffer)
{
    sqlbuf_t sb = {0};
    char big[1000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    sqlbuf_printf(&sb, "%s|%d", big, 42);
    cr_assert_eq(sb.len, 1002);
    cr_assert_str_eq(sqlbuf_str(&sb) + 999, "|42");
    sqlbuf_free(&sb);
}

Test(sqlbuf, a_failed_append_poisons_the_whole_text)
{
    sqlbuf_t sb = {0};
    SQLBUF_LIT(&sb, "SELECT 1");
    sb.failed = true; /* what an allocation failure sets */
    SQLBUF_LIT(&sb, " FROM t");
    cr_assert_eq(sb.len, strlen("SELECT 1"), "appends after a failure must do nothing");
    cr_assert_null(sqlbuf_take(&sb), "a failed text must never be handed out");
    cr_assert_null(sb.data);
}

Test(sqlbuf, empty_text_is_an_empty_string)
{
    sqlbuf_t sb = {0};
    char *s = sqlbuf_take(&sb);
    cr_assert_str_eq(s, "");
    free(s);
}

Test(lexer, statement_end_skips_semicolons_in_literals_and_routine_bodies)
{
    const char *sql = "SET a = 'x;y'; CREATE FUNCTION f() RETURNS int BEGIN ATOMIC; SELECT 1; "
                      "END; SELECT $$;$$";
    size_t last;
    size_t next = lex_statement_end(sql, 0, true, &last);
    cr_assert_eq(next, strlen("SET a = 'x;y';"));
    cr_assert_eq(last, strlen("SET a = 'x;y'"));
    size_t p = lex_skip_blank(sql, next);
    next = lex_statement_end(sql, p, true, &last);
    cr_assert_eq(next, strlen("SET a = 'x;y'; CREATE FUNCTION f() RETURNS int BEGIN ATOMIC; "
                              "SELECT 1; END;"));
    p = lex_skip_blank(sql, next);
    next = lex_statement_end(sql, p, true, &last);
    cr_assert_eq(next, strlen(sql));
    cr_assert_eq(last, strlen(sql));
}

Test(lexer, backslash_escapes_only_without_standard_strings)
{
    const char *sql = "SELECT 'a\\'; SELECT 1'";
    size_t last;
    /* standard strings: the literal is 'a\' and the ; ends the statement */
    cr_assert_eq(lex_statement_end(sql, 0, true, &last), strlen("SELECT 'a\\';"));
    /* standard_conforming_strings off: \' is a quote, the literal runs on */
    cr_assert_eq(lex_statement_end(sql, 0, false, &last), strlen(sql));
}
