/*
 * ref — the "@ref" syntax a client uses to read another ref: a schema
 * qualifier "schema@ref" (a table of that schema at ref) or "@ref" (the
 * table as the search path resolves it, at ref), written as a quoted name:
 * SELECT * FROM "public@feature/x".users, "@main".orders. Shared by the
 * rewriter and the command-line tools, so both read a ref the same way.
 *
 * Must never: guess. A qualifier without '@' is a plain schema name.
 */
#ifndef EPOCH_BRANCH_REF_H
#define EPOCH_BRANCH_REF_H

/* Split a schema qualifier at its first '@' (schema names cannot contain
 * one; a ref may: "main@{2024-01-01}"). Returns 1 when qualifier names a
 * ref: *schema is the part before the '@' (NULL when empty) and *ref the
 * part after it (possibly ""), both malloc'd for the caller to free; 0 when
 * qualifier is NULL or has no '@'; -1 out of memory. *schema and *ref are
 * NULL unless 1 is returned. */
int ref_split(const char *qualifier, char **schema, char **ref) __attribute__((warn_unused_result));

#endif
