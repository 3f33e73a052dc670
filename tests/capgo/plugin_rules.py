"""The replies of a real airlockd, read the way @capgo/capacitor-updater 8.51.14 reads them.

Each check cites the plugin source it follows (github.com/Cap-go/capacitor-updater, commit e235d092;
A = android/src/main/java/ee/forgr/capacitor_updater/, I = ios/Sources/CapacitorUpdaterPlugin/).
Request bodies are built like the plugin's createInfoObject (A CapgoUpdater.java:1969-1992).

  python3 plugin_rules.py SERVER APP KEY_ID
Prints one line per rule, "ok RULE" or "FAIL RULE: why"; exits 1 when any failed.
"""
import http.client
import json
import sys
import urllib.parse

SERVER, APP, KEY_ID = sys.argv[1], sys.argv[2], sys.argv[3]
URL = urllib.parse.urlsplit(SERVER)
failures = 0


def check(rule, cond, why=""):
    global failures
    if cond:
        print("ok " + rule)
    else:
        failures += 1
        print("FAIL " + rule + ": " + why)


def info(device="2f0c5b6e-1a7d-4c1e-9b3a-5d6e7f8a9b0c", **extra):
    """A CapgoUpdater.java createInfoObject body (A CapgoUpdater.java:1969-1992)."""
    body = {
        "platform": "android",
        "device_id": device,
        "app_id": APP,
        "custom_id": "",
        "version_build": "1.0",  # the app's native version name as Android reports it
        "version_code": "1",
        "version_os": "14",
        "version_name": "builtin",
        "plugin_version": "8.51.14",
        "is_emulator": False,
        "is_prod": True,
        "install_source": "com.android.vending",
        "defaultChannel": "",
        "key_id": KEY_ID,
    }
    body.update(extra)
    return body


def call(method, path, body=None, query=None):
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=10)
    if query is not None:
        path += "?" + urllib.parse.urlencode({k: str(v) for k, v in query.items()})
    data = None if body is None else json.dumps(body)
    headers = {} if body is None else {"Content-Type": "application/json"}
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    text = r.read().decode()
    conn.close()
    return r.status, text


# ---- listChannels: GET /channel_self with the info object as the query string
# (A CapgoUpdater.java:2667-2680). The body must be a bare JSON array (A :2764 `new JSONArray(data)`,
# I InternalUtils.swift:86 decodes `[ChannelInfo]`); each `id` a number or the whole call fails
# (A :2769-2772 `channelId instanceof Number`; I :73 `let id: Int`); public / allow_self_set read as
# booleans (A :2776-2777 optBoolean; I :75-76 `Bool?`).
status, text = call("GET", "/channel_self", query=info())
channels = json.loads(text) if status == 200 else None
check("listChannels is a bare array", isinstance(channels, list), f"{status} {text[:200]}")
if isinstance(channels, list):
    names = [c.get("name") for c in channels]
    check("listChannels shows public and self-assignable channels only",
          sorted(names) == ["beta", "production"], str(names))
    check("listChannels ids are numbers",
          all(isinstance(c.get("id"), int) and not isinstance(c.get("id"), bool) for c in channels),
          text)
    check("listChannels ids are distinct", len({c["id"] for c in channels}) == len(channels), text)
    check("listChannels public/allow_self_set are booleans",
          all(isinstance(c.get("public"), bool) and isinstance(c.get("allow_self_set"), bool)
              for c in channels), text)
    status2, text2 = call("GET", "/channel_self", query=info())
    check("listChannels ids are stable", status2 == 200 and json.loads(text2) == channels, text2)

# ---- setChannel: POST with the info object + channel (A CapgoUpdater.java:2450-2480). The plugin
# stores `channel` locally unless the reply has `error` (then it reports it) or `unset: true` (then it
# clears its choice); I CapgoUpdater.swift setChannel decodes SetChannelDec (status, error, message:
# String?, unset: Bool?), and a non-2xx status is an error.
status, text = call("POST", "/channel_self", info(channel="beta"))
reply = json.loads(text) if text else {}
check("setChannel to a self-assignable channel is allowed",
      status == 200 and "error" not in reply and reply.get("unset") is not True, f"{status} {text}")
check("setChannel answer decodes as SetChannelDec",
      all(isinstance(reply.get(k), str) for k in ("status",) ) and
      all(k not in reply or isinstance(reply[k], (str, bool)) for k in reply), text)

status, text = call("POST", "/channel_self", info(channel="production"))
reply = json.loads(text) if text else {}
check("setChannel to the default channel answers unset: true",
      status == 200 and reply.get("unset") is True and "error" not in reply, f"{status} {text}")

# The plugin fires channelPrivate when the error code contains one of these
# (A CapacitorUpdaterPlugin.java:2710-2718).
status, text = call("POST", "/channel_self", info(channel="internal"))
reply = json.loads(text) if text else {}
code = reply.get("error", "")
check("setChannel to a private channel gives a code the plugin recognises",
      status == 400 and ("channel_self_set_not_allowed" in code or
                         "cannot_update_via_private_channel" in code), f"{status} {text}")

# ---- getChannel: PUT with the info object (A CapgoUpdater.java:2489-2611); the plugin saves the
# `channel` it gets back (A :2600, :2614-2630 persistDefaultChannelFromResponse). A device set to beta sends
# it as defaultChannel and must stay on beta.
status, text = call("PUT", "/channel_self", info(defaultChannel="beta"))
reply = json.loads(text) if text else {}
check("getChannel keeps a device set to beta on beta",
      status == 200 and reply.get("channel") == "beta", f"{status} {text}")
status, text = call("PUT", "/channel_self", info())
reply = json.loads(text) if text else {}
check("getChannel without a choice names the default channel",
      status == 200 and reply.get("channel") == "production", f"{status} {text}")

# ---- native versions: version_build "1.0" on every endpoint (no 400).
status, text = call("POST", "/updates", info())
reply = json.loads(text) if text else {}
check("updates accepts native version 1.0", status == 200 and reply.get("version") == "1.0.1",
      f"{status} {text[:300]}")

# ---- key_id: the plugin sends the first 20 characters of its public key (A CryptoCipher.java
# calcKeyId); a device holding another key must not be offered a bundle it cannot decrypt.
status, text = call("POST", "/updates", info(key_id="MIIBCgKCAQEAnotOurKey"[:20]))
reply = json.loads(text) if text else {}
check("updates answers key_id_mismatch to another key",
      status == 200 and reply.get("error") == "key_id_mismatch" and reply.get("kind") == "blocked",
      f"{status} {text[:300]}")

# ---- stats: the plugin queues up to 200 events (A CapgoUpdater.java:141 MAX_PENDING_STATS) and
# posts them as one array (A :3061-3069); a 2xx clears them, 408/429/5xx requeue them, any other
# status drops the whole batch (A :3094-3130, isTransientStatsFailure :3145-3147).
def event(i, action="app_moved_to_background", version="1.0.1"):
    e = info(version_name=version, old_version_name="", action=action, timestamp=1764892800000 + i)
    e["metadata"] = {"error": "TypeError: undefined is not a function " * 12,
                     "stack": "at main.js:1:1\n" * 40}
    return e


batch = [event(i) for i in range(199)]
batch.insert(100, event(100, action="download_manifest_file_fail", version="1.0.1:assets/index-Bx7fK2.js"))
body = json.dumps(batch)
check("the test batch is the plugin's size", len(batch) == 200 and len(body) > 64 * 1024, str(len(body)))
status, text = call("POST", "/stats", batch)
check("a full stats batch (200 events, over 64 KiB, composite version) is accepted",
      200 <= status < 300, f"{status} {text[:300]}")
# Android does not queue manifest failures: DownloadService.java sendStatsAsync (:372-399) posts one
# object of its own (no key_id, no timestamp) with version_name VERSION:FILE (:555, :867) and
# ignores the answer; iOS queues the same composite name (I CapgoUpdater.swift:1622).
single = {k: v for k, v in info().items() if k != "key_id"}
single.update(version_name="1.0.1:index-Bx7fK2.js", old_version_name="",
              action="download_manifest_file_fail")
status, text = call("POST", "/stats", single)
check("a single manifest-failure stat as DownloadService sends it is accepted",
      200 <= status < 300, f"{status} {text[:300]}")
bad = [event(0), dict(event(1), action="Not An Action"), event(2)]
status, text = call("POST", "/stats", bad)
reply = json.loads(text) if text else {}
results = reply.get("results", [])
check("one bad event does not sink the batch (2xx, per-event results)",
      200 <= status < 300 and [r.get("status") for r in results] == ["ok", "error", "ok"],
      f"{status} {text[:300]}")

# ---- 429: after a 429 the plugin sends one rate_limit_reached stat and releases its claim (to send
# it again) when that is not a success (A CapgoUpdater.java:2034-2035, sendRateLimitStatistic
# :2167-2216).
limited = False
for _ in range(40):
    status, text = call("POST", "/updates", info(device="9e8d7c6b-5a49-4838-a7b6-c5d4e3f2a1b0"))
    if status == 429:
        limited = True
        break
check("the check is rate limited (429)", limited, "no 429 in 40 rapid checks")
status, text = call("POST", "/stats",
                    info(device="9e8d7c6b-5a49-4838-a7b6-c5d4e3f2a1b0", version_name="builtin",
                         old_version_name="", action="rate_limit_reached"))
check("the rate_limit_reached stat gets through after a 429", 200 <= status < 300,
      f"{status} {text[:200]}")

sys.exit(1 if failures else 0)
