#!/usr/bin/env bash
# The kiosk: Chromium full-screen on the monitor's page, started by the desktop session
# (~/.config/autostart/emotion-edge-kiosk.desktop, written by sudo ./install.sh --kiosk).
# Waits for the page (the service may still be starting), and starts Chromium again if it
# is closed or crashes. Installed as /opt/emotion-edge/kiosk.sh.
set -u
URL=${1:-http://127.0.0.1:8080/}
browser=$(command -v chromium-browser || command -v chromium) || {
	echo "kiosk.sh: no chromium-browser or chromium installed" >&2
	exit 1
}
for _ in $(seq 120); do # up to two minutes for the service to come up
	port=${URL##*:}; port=${port%%/*}
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
	sleep 1
done
while true; do
	"$browser" --kiosk --noerrdialogs --disable-infobars --no-first-run \
		--disable-session-crashed-bubble --disable-features=Translate --incognito \
		--ozone-platform-hint=auto --check-for-update-interval=31536000 "$URL"
	sleep 5
done
