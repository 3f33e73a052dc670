/* libairlock-client's C API: the device side of Airlock (check, download, verify, decrypt, install
 * atomically, confirm or roll back, report) for C programs and for Swift, Kotlin/JNI or any
 * language that can call C. It is the same update cycle as `airlock-agent`
 * (docs/operations/agent.md); docs/operations/device-client.md describes the API.
 *
 * Conventions
 * - Every fallible function returns an airlock_status_t: AIRLOCK_OK (0) or an error code. Out
 *   parameters are written only on AIRLOCK_OK.
 * - The message of the last error of a handle: airlock_last_error(handle).
 * - Strings are UTF-8, NUL-terminated. Strings and structs the library allocates are freed only
 *   with the airlock_*_free function named beside them (never with free()); passing NULL to a free
 *   function does nothing.
 * - Thread safety: a handle must not be used by two threads at once (one handle per thread).
 *   Separate handles are independent, also on the same install_dir and across processes: the
 *   install journal serializes them (that is how an app confirms a release while the agent's
 *   update waits for the confirmation). Callbacks run on the thread that called the function.
 * - airlock_update blocks: it downloads and then waits up to health_timeout for the confirmation
 *   (every network request has a timeout: docs/operations/device-client.md).
 * - C99; no function throws or aborts on bad input.
 */
#ifndef AIRLOCK_AIRLOCK_H_
#define AIRLOCK_AIRLOCK_H_

#include <stddef.h>
#include <stdint.h>

#include "airlock/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. The numbers are stable: a code keeps its value in every later version and new codes
 * get new numbers. airlock_status_name() gives each its name (e.g. "hash_mismatch"). */
typedef enum airlock_status {
  AIRLOCK_OK = 0,
  AIRLOCK_E_INVALID_ARGUMENT = 1, /* a bad value: NULL handle or argument, bad config key */
  AIRLOCK_E_NOT_FOUND = 2,        /* a file, identity or release does not exist; confirm: the
                                     release is not the one awaiting confirmation */
  AIRLOCK_E_ALREADY_EXISTS = 3,   /* the release failed before (never retried), or is installed */
  AIRLOCK_E_IO = 4,               /* the file system or the network failed */
  AIRLOCK_E_MALFORMED = 5,        /* input that does not parse (config TOML, server answer) */
  AIRLOCK_E_UNSUPPORTED = 6,      /* well-formed but not accepted (e.g. encryption mode) */
  AIRLOCK_E_LIMIT_EXCEEDED = 7,   /* a size bound was hit, or the server asked to wait (429) */
  AIRLOCK_E_UNSAFE_PATH = 8,      /* a bundle path could escape its folder */
  AIRLOCK_E_BAD_SIGNATURE = 9,    /* a signature does not verify */
  AIRLOCK_E_WRONG_KEY = 10,       /* signed by or for another key, app or channel */
  AIRLOCK_E_HASH_MISMATCH = 11,   /* bytes differ from their signed length or hash */
  AIRLOCK_E_EXPIRED = 12,         /* signed metadata is expired */
  AIRLOCK_E_ROLLBACK = 13,        /* a downgrade, a security floor below the one seen, or a
                                     release rolled back */
  AIRLOCK_E_DECRYPT_FAILED = 14,  /* the content does not decrypt with this device's key */
  AIRLOCK_E_TRUNCATED = 15,       /* data ends early */
  AIRLOCK_E_TRAILING_DATA = 16,   /* data after its declared end */
  AIRLOCK_E_KEY_UNUSABLE = 17,    /* the server refuses this device (not enrolled, revoked, ...) */
  AIRLOCK_E_CRYPTO = 18,          /* the crypto library failed */
  AIRLOCK_E_INTERNAL = 19,        /* a bug in the library */
  AIRLOCK_E_NO_MEMORY = 20        /* an allocation failed */
} airlock_status_t;

/* The name of a code ("ok", "invalid_argument", ..., "hash_mismatch"); "unknown" for other
 * values. A static string: do not free. */
AIRLOCK_EXPORT const char* airlock_status_name(airlock_status_t status);

/* The library's version, e.g. "0.1.0". A static string. */
AIRLOCK_EXPORT const char* airlock_version(void);

/* Frees a string the library returned. */
AIRLOCK_EXPORT void airlock_string_free(char* s);

/* An open install directory (opaque). */
typedef struct airlock_client airlock_client_t;

/* Opens the install directory named by the agent's TOML config file (docs/operations/agent.md;
 * `poll_interval` is read but used only by `airlock-agent run`), recovering what a killed run left
 * there, and loads the device identity if the device has enrolled. On success *out is a handle to
 * close with airlock_close. On error *out is NULL and, when error_message is not NULL,
 * *error_message is the message (free it with airlock_string_free).
 * Codes: AIRLOCK_E_INVALID_ARGUMENT (NULL config_path or out, a bad key: the message names it),
 * AIRLOCK_E_NOT_FOUND (no such config file), AIRLOCK_E_MALFORMED (not TOML: the message has the
 * line), AIRLOCK_E_IO (the install directory cannot be opened). */
AIRLOCK_EXPORT airlock_status_t airlock_open(const char* config_path, airlock_client_t** out,
                                             char** error_message);

/* The configuration built in code instead of a file: the keys of the agent's TOML config
 * (docs/operations/agent.md). Fill it with airlock_config_init (the defaults), then set the fields;
 * the library copies what it needs during airlock_open_config. */
typedef struct airlock_config {
  size_t struct_size;             /* sizeof(airlock_config_t), set by airlock_config_init */
  const char* server;             /* required: http:// or https:// */
  const char* app;                /* required */
  const char* channel;            /* required */
  const char* install_dir;        /* required; absolute, or relative to the working directory */
  const char* trusted_root;       /* required: the app's root.json */
  const char* enrollment_token;   /* NULL: none */
  const char* restart_command;    /* NULL: none */
  int64_t health_timeout_seconds; /* default 30 (1 s to 30 days) */
  int64_t crash_loop_limit;       /* default 3 (1 to 100) */
  const char* platform;           /* default "linux" */
  const char* native_version;     /* default "1.0.0" */
  const char* builtin_version;    /* default "0.0.0" */
  const char* builtin_dir;        /* NULL: none */
} airlock_config_t;

/* Sets struct_size and the defaults; the required strings are NULL. */
AIRLOCK_EXPORT void airlock_config_init(airlock_config_t* config);

/* As airlock_open, from a config built in code. AIRLOCK_E_INVALID_ARGUMENT names the field
 * ("config: trusted_root must not be empty"), also for a struct_size this library does not know. */
AIRLOCK_EXPORT airlock_status_t airlock_open_config(const airlock_config_t* config,
                                                    airlock_client_t** out, char** error_message);

/* Closes the handle (NULL: nothing). */
AIRLOCK_EXPORT void airlock_close(airlock_client_t* client);

/* The message of the handle's last failed call ("" if none). Valid until the next call on the
 * handle; do not free. For a NULL handle: a static message saying so. */
AIRLOCK_EXPORT const char* airlock_last_error(const airlock_client_t* client);

/* Download progress: bytes received so far and the signed total. */
typedef void (*airlock_progress_fn)(uint64_t done, uint64_t total, void* user_data);
/* One line of what the update is doing ("offered 1.2.0 on channel production", ...). */
typedef void (*airlock_message_fn)(const char* line, void* user_data);

/* Sets (fn NULL: removes) the callbacks. They are called during airlock_update. */
AIRLOCK_EXPORT airlock_status_t airlock_set_progress_callback(airlock_client_t* client,
                                                              airlock_progress_fn fn,
                                                              void* user_data);
AIRLOCK_EXPORT airlock_status_t airlock_set_message_callback(airlock_client_t* client,
                                                             airlock_message_fn fn,
                                                             void* user_data);

/* Makes the device's keys (once, under install_dir/identity, private keys mode 0600) and enrolls
 * them with the config's enrollment token. *active (may be NULL) is 1 when the device is active,
 * 0 when an operator must still approve it. Codes: AIRLOCK_E_KEY_UNUSABLE (token refused),
 * AIRLOCK_E_ALREADY_EXISTS (another key under this device id), AIRLOCK_E_IO (no connection). */
AIRLOCK_EXPORT airlock_status_t airlock_enroll(airlock_client_t* client, int* active);

/* What the server offers: its claim, nothing downloaded or verified. */
typedef struct airlock_offer {
  int update;          /* 1: a release is offered */
  const char* reason;  /* update == 0: "up_to_date", "no_release", "key_pending", ... */
  const char* version; /* update == 1: the offered version; else "" */
  const char* channel; /* update == 1 */
  int rollback;        /* 1: offered as a signed rollback */
  uint64_t length;     /* the bundle's size in bytes */
} airlock_offer_t;

/* Asks the server. *out is freed with airlock_offer_free. Codes: AIRLOCK_E_NOT_FOUND (not enrolled
 * yet), AIRLOCK_E_KEY_UNUSABLE (the server refuses the device), AIRLOCK_E_IO. */
AIRLOCK_EXPORT airlock_status_t airlock_check(airlock_client_t* client, airlock_offer_t** out);
AIRLOCK_EXPORT void airlock_offer_free(airlock_offer_t* offer);

typedef enum airlock_outcome_kind {
  AIRLOCK_UP_TO_DATE = 0, /* nothing newer for this device */
  AIRLOCK_INSTALLED = 1,  /* a newer release installed and confirmed */
  AIRLOCK_REFUSED = 2,    /* an offered release failed a check: nothing installed */
  AIRLOCK_ROLLED_BACK = 3, /* installed, not confirmed in time: back on the last good release */
  AIRLOCK_ABANDONED = 4    /* a wait given up at a stop request (the agent daemon's; the library
                              never asks): the next airlock_update goes on from the journal */
} airlock_outcome_kind_t;

typedef struct airlock_outcome {
  airlock_outcome_kind_t kind;
  /* REFUSED, ROLLED_BACK: the code that says what failed (AIRLOCK_E_HASH_MISMATCH,
     AIRLOCK_E_ROLLBACK, ...); AIRLOCK_OK otherwise. */
  airlock_status_t code;
  const char* reason;  /* REFUSED, ROLLED_BACK: the reason reported to the server
                          ("hash_mismatch", "health_timeout", ...); else "" */
  const char* message; /* one line for the user */
} airlock_outcome_t;

/* One whole update cycle: check, verify the target under the pinned root, download (bounded,
 * resumable), decrypt, verify every file, install into an inactive slot, switch `current`, run
 * restart_command, and wait up to health_timeout for airlock_confirm (from this or any other
 * process) else roll back. A refused or rolled-back release is an outcome (AIRLOCK_OK with kind
 * REFUSED / ROLLED_BACK), not an error; errors are failures of the library itself:
 * AIRLOCK_E_NOT_FOUND (not enrolled yet), AIRLOCK_E_KEY_UNUSABLE / AIRLOCK_E_IO (the check failed),
 * AIRLOCK_E_IO (the journal). *out is freed with airlock_outcome_free. */
AIRLOCK_EXPORT airlock_status_t airlock_update(airlock_client_t* client, airlock_outcome_t** out);
AIRLOCK_EXPORT void airlock_outcome_free(airlock_outcome_t* outcome);

/* The app says release_id (its AIRLOCK_RELEASE) is healthy. AIRLOCK_E_NOT_FOUND when release_id is
 * not the release awaiting confirmation (a confirmation for another release changes nothing);
 * confirming the confirmed active release again is AIRLOCK_OK. */
AIRLOCK_EXPORT airlock_status_t airlock_confirm(airlock_client_t* client, const char* release_id);

/* Back to the last good release (or the built-in) now; the release left is remembered as failed
 * (manual_rollback) and the restart command runs. AIRLOCK_E_NOT_FOUND: nothing to roll back. */
AIRLOCK_EXPORT airlock_status_t airlock_rollback(airlock_client_t* client);

typedef struct airlock_failed_release {
  const char* release;
  const char* version;
  const char* reason;
} airlock_failed_release_t;

typedef struct airlock_install_status {
  const char* app;
  const char* version;           /* the running version (builtin_version when release is "") */
  const char* release;           /* the active release's id; "" for the built-in */
  const char* state;             /* "idle", "confirmed", "awaiting_health", ... */
  const char* last_good_release; /* "" if none */
  const char* last_good_version;
  uint64_t highest_security_floor;
  const char* last_rollback_reason; /* "" if none */
  size_t failed_count;
  const airlock_failed_release_t* failed; /* failed_count releases never to be retried */
} airlock_install_status_t;

/* The installed release and the state of the install directory (no network). *out is freed with
 * airlock_install_status_free. */
AIRLOCK_EXPORT airlock_status_t airlock_get_status(airlock_client_t* client,
                                                   airlock_install_status_t** out);
AIRLOCK_EXPORT void airlock_install_status_free(airlock_install_status_t* status);

/* Sends the queued reports, oldest first. *sent (may be NULL) is the number sent. AIRLOCK_E_IO:
 * the server is unreachable (they stay queued); AIRLOCK_E_NOT_FOUND: not enrolled yet. */
AIRLOCK_EXPORT airlock_status_t airlock_flush_reports(airlock_client_t* client, uint64_t* sent);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* AIRLOCK_AIRLOCK_H_ */
