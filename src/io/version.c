/* The library's version: the string compiled into it, so a program linked
 * against a shared libselfsup learns which one it actually runs with. */
#include "selfsup/version.h"

const char *ss_version(void) { return SS_VERSION_STRING; }
