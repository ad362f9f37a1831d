/* fuzz_svc_chat.c - the chat service's handlers (join, say, leave) with
 * random well-formed heads: see fuzz_service.h. */
static const char *const fz_types[] = {"join", "say", "leave"};
static const char *const fz_members[] = {"room", "nick", "history", "id", "text", "ts"};
static const char *const fz_strings[] = {
    "lobby",        "alice",       "bob",      "",       "a b",
    "\\u202ealice", "\\u0430lice", "x\\u200b", "room/1", "0123456789012345678901234567890123",
    "\\u001b[2J",   "alice"};
#define FZ_SERVICE "echo,chat"
#include "fuzz_service.h"
