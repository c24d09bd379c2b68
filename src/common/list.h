/* list — intrusive circular doubly-linked list (the kernel's, in small). */
#ifndef EPOCH_COMMON_LIST_H
#define EPOCH_COMMON_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct list_node {
    struct list_node *prev, *next;
} list_node_t;

static inline void list_init(list_node_t *head)
{
    head->prev = head->next = head;
}
static inline bool list_empty(const list_node_t *head)
{
    return head->next == head;
}
static inline bool list_linked(const list_node_t *n)
{
    return n->next != NULL && n->next != n;
}
static inline void list_append(list_node_t *head, list_node_t *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}
static inline void list_remove(list_node_t *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

#define list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define list_for_each_safe(pos, tmp, head)                                                         \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)

#endif
