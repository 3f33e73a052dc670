/* An app's updater, written against the installed libairlock-client's C API only.
 *
 *   c-client CONFIG enroll            make the device's keys and enroll them
 *   c-client CONFIG status            the running release
 *   c-client CONFIG check             what the server offers (its claim; nothing is downloaded)
 *   c-client CONFIG update            one update cycle; prints its outcome
 *   c-client CONFIG confirm [RELEASE] the app is healthy (RELEASE defaults to $AIRLOCK_RELEASE)
 *
 * Exit status: 0 done (installed, up to date, confirmed), 1 a release was refused or rolled back,
 * 2 an error (its code's name and number, and the message, on stderr).
 *
 * Build against an installed prefix P:
 *   cc -std=c99 main.c $(PKG_CONFIG_PATH=P/lib/pkgconfig pkg-config --cflags --libs airlock-client)
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <airlock/airlock.h>

static int fail(airlock_client_t* client, airlock_status_t status, const char* what) {
  fprintf(stderr, "c-client: %s failed: %s (%d): %s\n", what, airlock_status_name(status),
          (int)status, airlock_last_error(client));
  return 2;
}

static void on_message(const char* line, void* user_data) {
  (void)user_data;
  printf("  %s\n", line);
}

static void on_progress(uint64_t done, uint64_t total, void* user_data) {
  (void)user_data;
  if (done == total) printf("  downloaded %" PRIu64 " bytes\n", total);
}

static int print_status(airlock_client_t* client) {
  airlock_install_status_t* status = NULL;
  airlock_status_t rc = airlock_get_status(client, &status);
  if (rc != AIRLOCK_OK) return fail(client, rc, "status");
  printf("%s: version %s, release %s, state %s\n", status->app, status->version,
         status->release[0] != '\0' ? status->release : "built-in", status->state);
  for (size_t i = 0; i < status->failed_count; ++i) {
    printf("  never retried: %s (%s)\n", status->failed[i].release, status->failed[i].reason);
  }
  airlock_install_status_free(status);
  return 0;
}

static int update(airlock_client_t* client) {
  static const char* const kinds[] = {"up_to_date", "installed", "refused", "rolled_back"};
  airlock_outcome_t* outcome = NULL;
  airlock_status_t rc;
  int exit_code;
  airlock_set_message_callback(client, on_message, NULL);
  airlock_set_progress_callback(client, on_progress, NULL);
  rc = airlock_update(client, &outcome);
  if (rc != AIRLOCK_OK) return fail(client, rc, "update");
  printf("outcome: %s\n",
         (int)outcome->kind >= 0 && (int)outcome->kind < 4 ? kinds[outcome->kind] : "unknown");
  if (outcome->kind == AIRLOCK_REFUSED || outcome->kind == AIRLOCK_ROLLED_BACK) {
    printf("code: %s (%d), reason: %s\n", airlock_status_name(outcome->code), (int)outcome->code,
           outcome->reason);
  }
  printf("%s\n", outcome->message);
  exit_code = outcome->kind == AIRLOCK_REFUSED || outcome->kind == AIRLOCK_ROLLED_BACK ? 1 : 0;
  airlock_outcome_free(outcome);
  return exit_code;
}

int main(int argc, char** argv) {
  airlock_client_t* client = NULL;
  char* error = NULL;
  airlock_status_t rc;
  int exit_code = 2;
  const char* command;
  if (argc < 3) {
    fprintf(stderr, "usage: %s CONFIG enroll|status|check|update|confirm [RELEASE]\n", argv[0]);
    return 2;
  }
  command = argv[2];
  rc = airlock_open(argv[1], &client, &error);
  if (rc != AIRLOCK_OK) {
    fprintf(stderr, "c-client: open failed: %s (%d): %s\n", airlock_status_name(rc), (int)rc,
            error != NULL ? error : "");
    airlock_string_free(error);
    return 2;
  }
  if (strcmp(command, "enroll") == 0) {
    int active = 0;
    rc = airlock_enroll(client, &active);
    if (rc == AIRLOCK_OK) {
      printf("enrolled: %s\n", active ? "active" : "pending");
      exit_code = 0;
    } else {
      exit_code = fail(client, rc, "enroll");
    }
  } else if (strcmp(command, "status") == 0) {
    exit_code = print_status(client);
  } else if (strcmp(command, "check") == 0) {
    airlock_offer_t* offer = NULL;
    rc = airlock_check(client, &offer);
    if (rc == AIRLOCK_OK) {
      if (offer->update) {
        printf("offered %s on channel %s, %" PRIu64 " bytes\n", offer->version, offer->channel,
               offer->length);
      } else {
        printf("no update: %s\n", offer->reason);
      }
      airlock_offer_free(offer);
      exit_code = 0;
    } else {
      exit_code = fail(client, rc, "check");
    }
  } else if (strcmp(command, "update") == 0) {
    exit_code = update(client);
  } else if (strcmp(command, "confirm") == 0) {
    const char* release = argc > 3 ? argv[3] : getenv("AIRLOCK_RELEASE");
    rc = airlock_confirm(client, release);
    if (rc == AIRLOCK_OK) {
      printf("confirmed %s\n", release);
      exit_code = 0;
    } else {
      exit_code = fail(client, rc, "confirm");
    }
  } else {
    fprintf(stderr, "c-client: unknown command %s\n", command);
  }
  airlock_close(client);
  return exit_code;
}
