#!/bin/sh
# A supervisor (re)starting an app, for the agent tests' restart_command: every start of the app
# runs `airlock-agent started` first (as systemd's ExecStartPre would), then the app from
# install_dir/current. A release whose files hold `crash` dies at once and is started again (at
# most 10 times); a healthy one confirms the release it runs, unless the file NO_CONFIRM exists.
#   agent_app.sh AGENT CONFIG INSTALL_DIR LOG [NO_CONFIRM]
G="$1"
CFG="$2"
DEV="$3"
LOG="$4"
echo "restart $AIRLOCK_VERSION" >>"$LOG"
i=0
while [ "$i" -lt 10 ]; do
  i=$((i + 1))
  "$G" --config "$CFG" started >>"$LOG" 2>&1 || { echo "started failed" >>"$LOG"; exit 1; }
  [ -e "$DEV/current/crash" ] || break
  echo "crashed" >>"$LOG"
done
[ -n "${5:-}" ] && [ -e "$5" ] && exit 0
case "$(readlink "$DEV/current")" in
  releases/*) exec "$G" --config "$CFG" confirm --release "$(basename "$(readlink "$DEV/current")")" >>"$LOG" 2>&1 ;;
esac
exit 0
