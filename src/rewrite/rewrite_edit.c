/*
 * rewrite_edit — the replacements the rewriter makes in the client's text:
 * each is a span [start, end) of the text and what goes there instead,
 * recorded while the tree is walked and spliced in at the end (or, for a
 * write that replaces a whole statement, into the text of that statement
 * first).
 *
 * Must never: apply two replacements to one span, or drop one silently.
 */
#include <stdlib.h>

#include "common/log.h"
#include "common/sqlbuf.h"
#include "rewrite/rewrite_internal.h"

/* arr (capacity *cap entries of elem bytes) with room for need entries,
 * doubling: arr itself or its reallocation; NULL out of memory (arr is
 * kept). */
void *rw_grow_array(void *arr, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return arr;
    int n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *bigger = realloc(arr, (size_t)n * elem);
    if (bigger)
        *cap = n;
    return bigger;
}

void rw_add_edit(walker_t *w, size_t start, size_t end, char *text)
{
    edit_t *edits =
        text ? rw_grow_array(w->edits, &w->edits_cap, w->nedits + 1, sizeof *edits) : NULL;
    if (!edits) {
        free(text);
        rw_fail_oom(w);
        return;
    }
    w->edits = edits;
    w->edits[w->nedits++] = (edit_t){start, end, text};
}

/* By start; at one start, an insertion (an empty span: the named-argument
 * retry's marker at 0, CTEs hoisted before a WITH query's name) before the
 * replacement that starts there, so the order does not depend on qsort. */
static int edit_cmp(const void *a, const void *b)
{
    const edit_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

char *rw_splice_range(walker_t *w, size_t start, size_t end)
{
    if (w->nedits > 1) /* edits is NULL until the first one */
        qsort(w->edits, (size_t)w->nedits, sizeof w->edits[0], edit_cmp);
    sqlbuf_t sb = {0};
    size_t pos = start;
    int kept = 0;
    for (int i = 0; i < w->nedits; i++) {
        edit_t *e = &w->edits[i];
        if (e->start >= start && e->end <= end && e->start >= pos) {
            sqlbuf_append(&sb, w->sql + pos, e->start - pos);
            sqlbuf_puts(&sb, e->text);
            pos = e->end;
            free(e->text);
            continue;
        }
        w->edits[kept++] = *e;
    }
    w->nedits = kept;
    if (end > pos)
        sqlbuf_append(&sb, w->sql + pos, end - pos);
    return sqlbuf_take(&sb);
}

char *rw_splice_all(walker_t *w)
{
    if (w->nedits > 1) /* edits is NULL until the first one */
        qsort(w->edits, (size_t)w->nedits, sizeof w->edits[0], edit_cmp);
    sqlbuf_t sb = {0};
    size_t pos = 0;
    for (int i = 0; i < w->nedits; i++) {
        /* edits never overlap: each replaces a different table reference,
         * and an edit of a whole statement took the edits inside it
         * (rw_splice_range) */
        epoch_assert(w->edits[i].start >= pos);
        sqlbuf_append(&sb, w->sql + pos, w->edits[i].start - pos);
        sqlbuf_puts(&sb, w->edits[i].text);
        pos = w->edits[i].end;
    }
    sqlbuf_puts(&sb, w->sql + pos);
    return sqlbuf_take(&sb);
}
