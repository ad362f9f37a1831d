/* names.h - file names of SPEC 4.7: validated, and resolved beneath the
 * server's root so that nothing, symbolic links included, leaves it. */
#ifndef SOCKIT_COMMON_NAMES_H
#define SOCKIT_COMMON_NAMES_H

#include <stddef.h>

#define SK_NAME_MAX 4096u /* bytes in a whole name */
#define SK_NAME_COMP 255u /* bytes in one component */
#define SK_PART_SUFFIX ".sockit-part"
#define SK_PART_NAME_MAX 256u /* a part file's name, with its NUL */

/* Check a name from the wire (len is its real byte length, so an embedded
 * NUL shows): relative, '/'-separated, no empty, "." or ".." component,
 * within the length limits, and not itself a part file. An empty name is
 * allowed only when empty_ok (list's root). Returns 0 or SK_EFORBIDDEN. */
int sk__name_check(const char *name, size_t len, int empty_ok);

/* Open the folder that holds name's last component, beneath root_fd,
 * creating missing folders when create is set. *base points into name at
 * the last component. Returns an O_RDONLY folder fd (the caller closes it)
 * or a negative errno (-EXDEV / -ELOOP when a link would leave the root). */
int sk__name_open_parent(int root_fd, const char *name, int create, const char **base);

/* Open a folder (name may be "" for the root itself) beneath root_fd.
 * Returns the fd or a negative errno. */
int sk__name_open_dir(int root_fd, const char *name);

/* The hidden part file's name for base: ".BASE.sockit-part", or, when that
 * would pass 255 bytes, a shortened base plus a digest of the whole one. */
void sk__name_part(const char *base, char out[SK_PART_NAME_MAX]);

/* 1 if a directory entry is a part file (hidden from listings). */
int sk__name_is_part(const char *entry);

/* The SPEC error code for a failed file operation's -errno. */
int sk__name_err(int err);

#endif
