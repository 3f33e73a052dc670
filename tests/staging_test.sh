#!/usr/bin/env bash
# Killing `airlock bundle open` and `airlock capgo decrypt` part-way: the plaintext they were writing
# is private while it exists (staging created 0700 / 0600 from the start, owned by us alone), SIGTERM
# removes it before the process dies, and after SIGKILL the next run removes it and succeeds.
#   tests/staging_test.sh BIN_DIR
# The kill point is reached by polling the filesystem (no fixed sleeps): the process is stopped
# (SIGSTOP) as soon as its staging holds bytes, inspected while stopped, then signalled.
set -u
BIN="$1/airlock"
W=$(mktemp -d)
PID=
trap '[ -n "$PID" ] && kill -KILL "$PID" 2>/dev/null; rm -rf "$W"' EXIT
. "$(dirname "$0")/lib.sh"
ME=$(id -u)

run 0 "" "$BIN" keygen --type ed25519 --out "$W/signer"
run 0 "" "$BIN" keygen --type x25519 --out "$W/device"
run 0 "" "$BIN" keygen --type rsa-4096 --out "$W/capgo"

# start_and_stop PATTERN CMD...: starts CMD in the background (PID), polls until a file matching the
# glob PATTERN holds bytes, then stops the process with SIGSTOP. Fails if CMD ended first.
start_and_stop() {
  local pattern="$1" f
  shift
  "$@" >"$W/bg.out" 2>"$W/bg.err" </dev/null &
  PID=$!
  while kill -0 "$PID" 2>/dev/null; do
    for f in $pattern; do
      if [ -s "$f" ]; then
        kill -STOP "$PID"
        return 0
      fi
    done
  done
  wait "$PID"
  PID=
  return 1
}

# private_staging PATH: PATH and everything under it is ours alone (directories 0700, files 0600).
private_staging() {
  local loose foreign
  loose=$(find "$1" \( -type d ! -perm 700 \) -o \( -type f ! -perm 600 \) | head -3)
  [ -z "$loose" ] && ok || bad "staging entries not private: $loose"
  foreign=$(find "$1" ! -uid "$ME" | head -3)
  [ -z "$foreign" ] && ok || bad "staging entries owned by someone else: $foreign"
  if [ "$ME" = 0 ] && command -v setpriv >/dev/null; then
    # Another user really cannot read the plaintext.
    if setpriv --reuid=65534 --regid=65534 --clear-groups cat "$2" >/dev/null 2>&1; then
      bad "another user can read $2"
    else
      ok
    fi
  fi
}

# --- bundle open ----------------------------------------------------------------------------------
# A tar bundle (no compression, so opening takes a moment) of a big random file and some small ones.
make_bundle() {  # make_bundle MIB
  rm -rf "$W/app" "$W/app.alb"
  mkdir -p "$W/app/sub"
  head -c $(($1 * 1024 * 1024)) /dev/urandom >"$W/app/big.bin"
  echo "<html>hello</html>" >"$W/app/index.html"
  echo "a" >"$W/app/sub/a.txt"
  run 0 "sealed" "$BIN" bundle seal "$W/app" --app com.example.app --version 1.0.0 --format tar \
    --sign-key "$W/signer.key" --recipient "$W/device.pub" --out "$W/app.alb"
}
OPEN=("$BIN" bundle open "$W/app.alb" --verify-key "$W/signer.pub" --decrypt-key "$W/device.key")
mkdir -p "$W/o"

# stop_open OUT: starts an open into $W/o/OUT and stops it once its first decrypted file has bytes
# (the open extracts into the staging's files/ as it decrypts);
# grows the bundle until an open lasts long enough to be caught.
stop_open() {
  local mib
  for mib in 32 128 512; do
    [ -f "$W/app.alb" ] || make_bundle "$mib"
    if start_and_stop "$W/o/.airlock-open-*/files/big.bin" "${OPEN[@]}" --out "$W/o/$1"; then
      return 0
    fi
    rm -rf "$W/o/$1" "$W/app.alb"
  done
  bad "bundle open always finished before it could be stopped"
  return 1
}

# SIGKILL: the staging stays, private; no output; the next run removes it and succeeds.
if stop_open out; then
  staging=$(ls -d "$W"/o/.airlock-open-??????)
  [ "$(echo "$staging" | wc -l)" -eq 1 ] && ok || bad "expected one staging folder: $staging"
  [ "$(stat -c %a "$staging")" = 700 ] && ok || bad "staging folder mode $(stat -c %a "$staging")"
  [ "$(stat -c %a "$staging/files/big.bin")" = 600 ] && ok || bad "decrypted file mode $(stat -c %a "$staging/files/big.bin")"
  private_staging "$staging" "$staging/files/big.bin"
  [ ! -e "$W/o/out" ] && ok || bad "output appeared before the open finished"
  kill -KILL "$PID"
  wait "$PID"
  [ $? -eq 137 ] && ok || bad "open did not die of SIGKILL"
  PID=
  [ -d "$staging" ] && ok || bad "SIGKILL cannot clean up, yet the staging is gone"
  private_staging "$staging" "$staging/files/big.bin"
  [ ! -e "$W/o/out" ] && ok || bad "output exists after SIGKILL"
  run 0 "every size and SHA-256 verified" "${OPEN[@]}" --out "$W/o/out"
  [ ! -e "$staging" ] && ok || bad "the next run left the killed run's staging $staging"
  [ -z "$(ls -A "$W/o" | grep -v '^out$')" ] && ok || bad "leftovers: $(ls -A "$W/o")"
  diff -r "$W/app" "$W/o/out" >/dev/null && ok || bad "opened files differ after a killed run"
fi

# SIGTERM: the process removes its staging, prints one error line and dies of the signal.
for sig in TERM HUP; do
  if stop_open "out-$sig"; then
    kill -"$sig" "$PID"
    kill -CONT "$PID"
    wait "$PID"
    status=$?
    PID=
    want=$((128 + $(kill -l "$sig")))
    [ "$status" -eq "$want" ] && ok || bad "open after SIG$sig exited $status, wanted $want"
    [ "$(wc -l <"$W/bg.err")" -eq 1 ] && ok || bad "more than one error line: $(cat "$W/bg.err")"
    grep -q "^airlock: error: .*interrupted by a signal; the partial output was removed" "$W/bg.err" && ok || bad "no error line: $(cat "$W/bg.err")"
    [ -z "$(ls -A "$W/o" | grep -v '^out$')" ] && ok || bad "SIG$sig left: $(ls -A "$W/o")"
  fi
done

# --- capgo decrypt --------------------------------------------------------------------------------
mkdir -p "$W/c"
make_capgo() {  # make_capgo MIB
  head -c $(($1 * 1024 * 1024)) /dev/urandom >"$W/plain.zip"
  run 0 "checksum" "$BIN" capgo encrypt "$W/plain.zip" --private-key "$W/capgo.key" --out "$W/enc.zip" --json
  CK=$(sed -n 's/.*"checksum": "\(.*\)".*/\1/p' "$W/out")
  SK=$(sed -n 's/.*"session_key": "\(.*\)".*/\1/p' "$W/out")
}
stop_decrypt() {  # stop_decrypt OUT
  local mib
  for mib in 64 256 1024; do
    [ -f "$W/enc.zip" ] || make_capgo "$mib"
    if start_and_stop "$W/c/.$1.tmp-*" "$BIN" capgo decrypt "$W/enc.zip" --public-key "$W/capgo.pub" \
      --session-key "$SK" --checksum "$CK" --out "$W/c/$1"; then
      return 0
    fi
    rm -f "$W/c/$1" "$W/enc.zip"
  done
  bad "capgo decrypt always finished before it could be stopped"
  return 1
}

if stop_decrypt dec.zip; then
  temp=$(ls "$W"/c/.dec.zip.tmp-??????)
  [ "$(stat -c %a "$temp")" = 600 ] && ok || bad "capgo temporary file mode $(stat -c %a "$temp")"
  private_staging "$temp" "$temp"
  [ ! -e "$W/c/dec.zip" ] && ok || bad "capgo output appeared before the checksum was checked"
  kill -KILL "$PID"
  wait "$PID"
  [ $? -eq 137 ] && ok || bad "capgo decrypt did not die of SIGKILL"
  PID=
  [ -f "$temp" ] && ok || bad "SIGKILL cannot clean up, yet the temporary file is gone"
  run 0 "decrypted" "$BIN" capgo decrypt "$W/enc.zip" --public-key "$W/capgo.pub" \
    --session-key "$SK" --checksum "$CK" --out "$W/c/dec.zip"
  [ ! -e "$temp" ] && ok || bad "the next run left the killed run's temporary file"
  [ "$(ls -A "$W/c")" = "dec.zip" ] && ok || bad "capgo leftovers: $(ls -A "$W/c")"
  cmp -s "$W/c/dec.zip" "$W/plain.zip" && ok || bad "capgo output differs after a killed run"
fi

if stop_decrypt term.zip; then
  kill -TERM "$PID"
  kill -CONT "$PID"
  wait "$PID"
  status=$?
  PID=
  [ "$status" -eq 143 ] && ok || bad "capgo decrypt after SIGTERM exited $status"
  [ "$(wc -l <"$W/bg.err")" -eq 1 ] && ok || bad "more than one error line: $(cat "$W/bg.err")"
  grep -q "^airlock: error: .*interrupted by a signal; the partial output was removed" "$W/bg.err" && ok || bad "no error line: $(cat "$W/bg.err")"
  [ "$(ls -A "$W/c")" = "dec.zip" ] && ok || bad "SIGTERM left: $(ls -A "$W/c")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
