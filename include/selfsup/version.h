/* The version of selfsup, defined once (the Makefile reads these three lines
 * for the shared library's file names: libselfsup.so.MAJOR is its soname,
 * libselfsup.so.MAJOR.MINOR.PATCH the file, and for selfsup.pc).
 *
 * The macros are the version of the headers a program was compiled with;
 * ss_version() is the version of the library it runs with (a shared
 * libselfsup may be newer than the headers). A new MAJOR version may break
 * the ABI (a new soname); MINOR and PATCH keep it. `selfsup --version`
 * prints ss_version(), with the git description of the source when the
 * build had one. */
#ifndef SELFSUP_VERSION_H
#define SELFSUP_VERSION_H

#define SS_VERSION_MAJOR 0
#define SS_VERSION_MINOR 1
#define SS_VERSION_PATCH 0

#define SS_VERSION_STR_(x) #x
#define SS_VERSION_STR(x) SS_VERSION_STR_(x)
/* "MAJOR.MINOR.PATCH" */
#define SS_VERSION_STRING \
    SS_VERSION_STR(SS_VERSION_MAJOR) "." SS_VERSION_STR(SS_VERSION_MINOR) "." SS_VERSION_STR(SS_VERSION_PATCH)
/* One number that orders versions: MAJOR * 10000 + MINOR * 100 + PATCH. */
#define SS_VERSION_NUMBER (SS_VERSION_MAJOR * 10000 + SS_VERSION_MINOR * 100 + SS_VERSION_PATCH)

/* The version of the linked library, "MAJOR.MINOR.PATCH" (static storage). */
const char *ss_version(void);

#endif
