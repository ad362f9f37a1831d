/* keyfile.h - key file messages shared by the server and the command. */
#ifndef SOCKIT_AUTH_KEYFILE_H
#define SOCKIT_AUTH_KEYFILE_H

#include <stddef.h>

/* What is wrong with the key file at path, in one line into buf that names
 * the file and the one thing wrong (missing / mode 0644 / 6 bytes / too
 * large / unreadable) and what to do: for a server, make one with keygen;
 * for a client, copy the server's (keygen would make a key the server does
 * not know). snprintf's return. */
int sk__key_describe(const char *path, int for_server, char *buf, size_t cap);

#endif
