/* The version of selfsup, defined once. `selfsup --version` prints it, with
 * the git description of the source when the build had one (the Makefile
 * writes it to $(B)/gen/selfsup_git.h; a tarball without .git has none). */
#ifndef SELFSUP_VERSION_H
#define SELFSUP_VERSION_H

#define SELFSUP_VERSION "0.1.0"

#endif
