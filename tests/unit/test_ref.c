/* Unit tests of src/branch/ref.c: the "schema@ref" and "@ref" qualifiers. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "branch/ref.h"

Test(ref, schema_at_ref_splits_into_schema_and_ref)
{
    char *schema, *ref;
    cr_assert_eq(ref_split("public@feature/x", &schema, &ref), 1);
    cr_expect_str_eq(schema, "public");
    cr_expect_str_eq(ref, "feature/x");
    free(schema);
    free(ref);
}

Test(ref, at_ref_alone_has_no_schema)
{
    char *schema, *ref;
    cr_assert_eq(ref_split("@main", &schema, &ref), 1);
    cr_expect_null(schema);
    cr_expect_str_eq(ref, "main");
    free(ref);
}

Test(ref, the_first_at_splits_and_the_ref_keeps_the_rest)
{
    char *schema, *ref;
    cr_assert_eq(ref_split("app@main@{2024-01-01 00:00}", &schema, &ref), 1);
    cr_expect_str_eq(schema, "app");
    cr_expect_str_eq(ref, "main@{2024-01-01 00:00}");
    free(schema);
    free(ref);
}

Test(ref, a_lone_at_is_an_empty_ref)
{
    char *schema, *ref;
    cr_assert_eq(ref_split("@", &schema, &ref), 1);
    cr_expect_null(schema);
    cr_expect_str_eq(ref, "");
    free(ref);
}

Test(ref, names_are_taken_verbatim)
{
    char *schema, *ref;
    cr_assert_eq(ref_split("My Schema@x'; DROP TABLE t; --", &schema, &ref), 1);
    cr_expect_str_eq(schema, "My Schema");
    cr_expect_str_eq(ref, "x'; DROP TABLE t; --");
    free(schema);
    free(ref);
}

Test(ref, a_plain_schema_or_none_is_not_a_ref)
{
    char *schema = (char *)"untouched", *ref = (char *)"untouched";
    cr_expect_eq(ref_split("public", &schema, &ref), 0);
    cr_expect_null(schema);
    cr_expect_null(ref);
    cr_expect_eq(ref_split(NULL, &schema, &ref), 0);
    cr_expect_null(schema);
    cr_expect_null(ref);
    cr_expect_eq(ref_split("", &schema, &ref), 0);
}
