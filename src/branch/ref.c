/* ref — see ref.h. */
#include "branch/ref.h"

#include <stdlib.h>
#include <string.h>

int ref_split(const char *qualifier, char **schema, char **ref)
{
    *schema = *ref = NULL;
    const char *at = qualifier ? strchr(qualifier, '@') : NULL;
    if (!at)
        return 0;
    if (at > qualifier && !(*schema = strndup(qualifier, (size_t)(at - qualifier))))
        return -1;
    if (!(*ref = strdup(at + 1))) {
        free(*schema);
        *schema = NULL;
        return -1;
    }
    return 1;
}
