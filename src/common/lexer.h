/*
 * lexer — the one SQL lexer: the token-level facts the rewriter needs about
 * the client's text that the parse tree does not give (where a qualified
 * name ends, what keyword precedes a position, a pass that skips literals
 * and comments), and the splitting of a Query string into statements that
 * the wire layer's settings replay needs without parsing.
 * All positions are byte offsets into a NUL-terminated text.
 */
#ifndef EPOCH_COMMON_LEXER_H
#define EPOCH_COMMON_LEXER_H

#include <stdbool.h>
#include <stddef.h>

/* End (exclusive) of the dotted name starting at pos: ident [. ident]...,
 * quoted or not, with blanks and comments allowed around the dots. Returns
 * pos when no identifier starts there. */
size_t lex_name_end(const char *sql, size_t pos);
/* End of a parenthesised list starting at pos ('(' there), or pos if none. */
size_t lex_paren_end(const char *sql, size_t pos);
/* End of the constant token at pos: a number (with a leading '-'), a
 * '...' or E'...' string, or a $n parameter; pos if none. */
size_t lex_constant_end(const char *sql, size_t pos);
/* End of a bracketed subscript starting at pos ('[' there; nested brackets
 * and parentheses, literals and comments skipped), or pos if none. */
size_t lex_bracket_end(const char *sql, size_t pos);
/* Skip blanks and comments forward from pos. */
size_t lex_skip_blank(const char *sql, size_t pos);
/* Start of the word just before pos (skipping blanks and comments) when it
 * equals kw case-insensitively; otherwise pos. */
size_t lex_keyword_before(const char *sql, size_t pos, const char *kw);
/* Copy of sql in which every bare word followed by "=>" is double-quoted in
 * lower case (so `from => 'x'` becomes `"from" => 'x'`), skipping literals,
 * quoted names and comments; NULL if there is none or out of memory. */
char *lex_quote_named_args(const char *sql);
/* Case-insensitive substring test (a cheap pre-check; meaning comes from the
 * parse tree). */
bool lex_contains_ci(const char *sql, size_t len, const char *needle);

/* First occurrence of keyword kw (a whole word, case-insensitive) at
 * parenthesis depth 0 in [from, to), outside literals, quoted names and
 * comments; `FROM` right after `DISTINCT` does not count. to if none. */
size_t lex_find_keyword(const char *sql, size_t from, size_t to, const char *kw);
/* Top-level (depth 0) occurrences of character ch in [from, to), at most
 * max, into pos[]; returns the count. */
int lex_find_char(const char *sql, size_t from, size_t to, char ch, size_t *pos, int max);

/* Template of a statement for the rewrite cache: every plain numeric and
 * '...' string constant becomes $k (k counting up from first_param), and
 * lits[] receives the replaced tokens. false (nothing allocated) when the
 * text has no such constant or out of memory. */
bool lex_template(const char *sql, int first_param, char **tmpl, char ***lits, int *nlits)
    __attribute__((warn_unused_result));
/* Highest $n parameter number used in sql (0 if none). */
int lex_max_param(const char *sql);
/* Inverse of lex_template on a rewritten template: each $k outside quotes
 * with first_param <= k < first_param + nlits becomes lits[k - first_param].
 * NULL if out of memory. */
char *lex_fill(const char *tmpl, int first_param, char *const *lits, int nlits);

/* A character that may continue an unquoted identifier. */
bool lex_ident_char(unsigned char c);
/* End of the token at pos (not blank; pos at the NUL gives pos): a literal
 * (with std_strings false, backslashes escape in '…' too, as PostgreSQL
 * reads them with standard_conforming_strings off), a quoted name, a dollar
 * quote, a word (*word = true), a number, or one character. */
size_t lex_token_end(const char *sql, size_t pos, bool std_strings, bool *word);
/* The statement starting at pos (not blank): *stmt_end is set past its last
 * token; returns where the next one may start (past its semicolon, or the
 * NUL). Semicolons inside parentheses and inside the BEGIN … END body of
 * CREATE FUNCTION/PROCEDURE do not end a statement (psql's heuristic). */
size_t lex_statement_end(const char *sql, size_t pos, bool std_strings, size_t *stmt_end);

#endif
