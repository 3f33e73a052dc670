#!/usr/bin/env bash
# Signs a device API request the way a device does (docs/api/server-api.md, "Device authentication";
# crypto/device_request.h), with openssl, for the shell tests and benchmarks:
#   tests/device_request.sh keygen KEY.pem          make an Ed25519 signing key; print its raw public
#                                                   key as 64 hex digits (the enrollment's signing_key)
#   tests/device_request.sh headers KEY.pem METHOD PATH DEVICE BODY_FILE
#                                                   print the three request headers, one per line,
#                                                   in curl's -H form, signed at the current time
set -euo pipefail
pubhex() { openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n'; }
case "${1:-}" in
  keygen)
    openssl genpkey -algorithm ed25519 -out "$2" 2>/dev/null
    chmod 600 "$2"
    pubhex "$2"
    echo
    ;;
  headers)
    key=$2 method=$3 path=$4 device=$5 body=$6
    ts=$(date +%s)
    canonical=$(mktemp)
    trap 'rm -f "$canonical"' EXIT
    printf 'airlock-device-request-v1\n%s\n%s\n%s\n%s\n%s' "$method" "$path" "$device" "$ts" \
      "$(sha256sum "$body" | cut -d' ' -f1)" >"$canonical"
    sig=$(openssl pkeyutl -sign -inkey "$key" -rawin -in "$canonical" | base64 -w0)
    printf 'X-Airlock-Device: %s\nX-Airlock-Timestamp: %s\nX-Airlock-Signature: %s\n' "$device" "$ts" "$sig"
    ;;
  *)
    echo "usage: $0 keygen KEY.pem | headers KEY.pem METHOD PATH DEVICE BODY_FILE" >&2
    exit 2
    ;;
esac
