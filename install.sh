#!/usr/bin/env bash
# install.sh: install the edge emotion monitor.
#
#   sudo ./install.sh               Raspberry Pi (or any Debian): a service that runs at boot
#   ./install.sh --local [--dev]    laptop / CI: ./.venv, no root, no systemd
#
# Every step says "nothing to do" when it is already done, so running it again (after a
# git pull, or after fixing a problem it reported) is always safe. ./install.sh --help
set -euo pipefail

APP=emotion-edge
SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONSTRAINTS="$SRC/systemd/pi-constraints.txt"
SHIPPED_MODELS=(emotion_int8.tflite emotion_int8.json)
# Debian packages the tests drive for real (--local --dev): the linter, the browser for
# the web page's tests, the MQTT broker and its clients, openssl for test certificates.
DEV_DEBS=(shellcheck chromium mosquitto mosquitto-clients openssl)
DEV_COMMANDS=(shellcheck chromium mosquitto mosquitto_sub openssl)

usage() {
	cat <<'EOF'
Usage: ./install.sh [OPTIONS]

Installs the edge emotion monitor.

  (no option)     Raspberry Pi / Debian install, needs root (sudo ./install.sh):
                  apt packages, a venv in /opt/emotion-edge/venv, the models in
                  /opt/emotion-edge/models, /etc/emotion-edge/config.toml (only if you
                  have none), the emotion-edge user, and the emotion-edge service,
                  enabled at boot and started.
  --local         Laptop / CI: create ./.venv with python3 (3.11 or newer), install
                  this folder into it (editable) and fetch the face models into
                  ./models. No root, no systemd, no apt.
  --dev           With --local: also the host toolchain and test tools
                  (TensorFlow, matplotlib, pytest).
  --no-start      Enable the service at boot but do not start or check it now
                  (e.g. the camera is not plugged in yet).
  --kiosk         Also show the monitor's web page full-screen on the Pi's screen:
                  turns on [web] in the config, installs Chromium if missing, and starts
                  it in kiosk mode in the desktop session of the user running sudo
                  (Raspberry Pi OS Bookworm desktop, labwc or wayfire), at every login.
  --web-tls       Serve the web page over HTTPS: makes a self-signed certificate for
                  this Pi's names and addresses (/etc/emotion-edge/web.crt, its key
                  web.key readable by the service only) unless there is one, and sets
                  [web] tls_cert and tls_key. Browsers warn about a self-signed one
                  once; replace the two files with your own to avoid that.
  --uninstall     Stop and remove the service, the venv, the models and the kiosk's
                  autostart entry. Keeps your config (/etc/emotion-edge) and event
                  logs (/var/log/emotion-edge).
                  With --local: removes ./.venv.
  --purge         With --uninstall: also remove config, logs, state and the user.
  --root DIR      Install under DIR instead of / (tests, image building): files are
                  written below DIR, and every command that would change the system
                  (apt-get, useradd, systemctl, chown, pip, ...) is printed as
                  "would run: ..." instead of being run.
  -h, --help      Show this help.

Environment: PYTHON picks the interpreter for --local (default: python3).
EOF
}

# --- output ----------------------------------------------------------------------------

say() { printf '%s\n' "$*"; }
step() { printf '==> %s: %s\n' "$1" "$2"; }
die() {
	printf 'install.sh: %s\n' "$*" >&2
	exit 1
}

# A command line as you would type it (arguments with spaces are quoted).
shown() {
	local a out=()
	for a in "$@"; do
		if [[ $a =~ ^[][A-Za-z0-9_./:=@,+%-]+$ ]]; then out+=("$a"); else out+=("'${a//\'/\'\\\'\'}'"); fi
	done
	printf '%s\n' "${out[*]}"
}

# Run a command that changes the system, or with --root only print it.
run() {
	if [[ -n $ROOT ]]; then
		say "    would run: $(shown "$@")"
	else
		say "    running: $(shown "$@")"
		"$@"
	fi
}

# --- small helpers -----------------------------------------------------------------------

# Copy $1 to $2 with mode $3 unless $2 already has the same bytes; says what it did.
# Returns 0 when it wrote the file, 1 when it was unchanged.
copy_if_changed() {
	local src=$1 dst=$2 mode=$3
	if [[ -f $dst ]] && cmp -s "$src" "$dst"; then
		if [[ $(stat -c %a "$dst") != "${mode#0}" ]]; then
			chmod "$mode" "$dst"
			say "    fixed mode $mode: $dst"
			return 0
		fi
		return 1
	fi
	install -D -m "$mode" "$src" "$dst"
	say "    wrote $dst"
	return 0
}

sha256_of() { sha256sum "$@" | cut -d' ' -f1; }

# Fingerprint of what a non-editable install is built from: a git pull that changes any
# of it reinstalls the package; an unchanged tree skips pip entirely.
source_fingerprint() {
	local files
	# (find complains about, and skips, the optional files that are absent)
	files=$(cd "$SRC" && { find pyproject.toml README.md LICENSE edge convert systemd/pi-constraints.txt \
		-type f ! -path '*/__pycache__/*' ! -name '*.pyc' 2>/dev/null || true; } | LC_ALL=C sort)
	(cd "$SRC" && printf '%s\n' "$files" | xargs -r -d '\n' sha256sum) | sha256_of
}

# Stamp for --local: pyproject.toml's hash plus the extras installed (editable install,
# so source edits need no reinstall). Printed as "sha=<hash> extras=<a,b>".
local_stamp_wanted() { printf 'sha=%s extras=%s\n' "$(sha256_of "$SRC/pyproject.toml")" "$1"; }

# Is a stamp good enough? Same pyproject hash and the wanted extras all installed.
stamp_covers() { # stamp_line wanted_extras
	local line=$1 wanted=$2 have extra
	[[ ${line%% *} == "sha=$(sha256_of "$SRC/pyproject.toml")" ]] || return 1
	have=",${line##*extras=},"
	for extra in ${wanted//,/ }; do
		[[ $have == *",$extra,"* ]] || return 1
	done
}

# The default config with every setting commented out: the file documents every key,
# and what is left commented keeps the built-in default (and systemd's log folder).
commented_config() {
	cat <<'EOF'
# /etc/emotion-edge/config.toml: settings of the emotion-edge service.
# Every setting below is commented out and shows its default. To change one, remove
# the "# " in front of it, edit the value, then: sudo systemctl restart emotion-edge
# Check the file first with:
#   /opt/emotion-edge/venv/bin/emotion-edge config --validate /etc/emotion-edge/config.toml
# The log folder is /var/log/emotion-edge (set by systemd) unless [log] dir says otherwise.
# install.sh never overwrites this file; config.toml.default beside it is the newest
# reference copy, refreshed on every install: compare them after an upgrade.

EOF
	sed -E 's/^([A-Za-z0-9_]+[[:space:]]*=)/# \1/' "$1"
}

merge_extras() { printf '%s,%s\n' "$1" "$2" | tr ',' '\n' | sed '/^$/d' | LC_ALL=C sort -u | paste -sd, -; }

python_ok() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }
python_version() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo "?"; }

# --- system (Raspberry Pi) install -------------------------------------------------------

set_system_paths() {
	OPT="$ROOT/opt/$APP"
	VENV="$OPT/venv"
	MODELS="$OPT/models"
	ETC="$ROOT/etc/$APP"
	UNIT="$ROOT/etc/systemd/system/$APP.service"
	DROPIN="$ROOT/etc/systemd/system/$APP.service.d/50-network.conf"
	AUTOSTART_NAME="$APP-kiosk.desktop"
	LINK="$ROOT/usr/local/bin/$APP"
	SYSTEM_PYTHON=/usr/bin/python3
	# Real-system state (users, services) is only queried without --root.
	SYSTEMD_UP=0
	if [[ -z $ROOT && -d /run/systemd/system ]]; then SYSTEMD_UP=1; fi
}

need_root() {
	if [[ -z $ROOT && $EUID -ne 0 ]]; then
		die "this needs root: run  sudo ./install.sh $*  (or ./install.sh --local on a laptop)"
	fi
}

check_platform() {
	local arch
	arch=$(uname -m)
	case $arch in
	aarch64 | x86_64) ;;
	*) die "a 64-bit OS is needed (this one is $arch; LiteRT has no 32-bit build): flash Raspberry Pi OS (64-bit)" ;;
	esac
}

pkg_installed() {
	[[ -z $ROOT ]] && [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null) == installed ]]
}

pkg_available() {
	local candidate
	candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
	[[ -n $candidate && $candidate != "(none)" ]]
}

is_raspberry_pi_os() { grep -rqs 'archive\.raspberrypi\.' /etc/apt/sources.list /etc/apt/sources.list.d/; }

step_apt() {
	if ! command -v apt-get >/dev/null 2>&1 || ! command -v dpkg-query >/dev/null 2>&1; then
		step "apt packages" "no apt here (not Debian / Raspberry Pi OS): skipped; you need Python 3.11+ with venv"
		return
	fi
	local required=(python3 python3-venv python3-numpy) optional=(python3-picamera2 python3-lgpio)
	local install=() skipped=() pkg
	for pkg in "${required[@]}"; do
		pkg_installed "$pkg" || install+=("$pkg")
	done
	# picamera2 and lgpio come from the Raspberry Pi archive; elsewhere they are skipped
	# (a USB camera or a video file needs neither).
	for pkg in "${optional[@]}"; do
		if pkg_installed "$pkg"; then continue; fi
		if [[ -n $ROOT ]] || is_raspberry_pi_os || pkg_available "$pkg"; then install+=("$pkg"); else skipped+=("$pkg"); fi
	done
	local note=""
	((${#skipped[@]})) && note=" (${skipped[*]}: not in this system's apt sources, skipped; the Pi camera module and GPIO LEDs need them)"
	if ((${#install[@]} == 0)); then
		step "apt packages" "nothing to do$note"
		return
	fi
	step "apt packages" "installing ${install[*]}$note"
	run apt-get update -q || die "apt-get update failed (network?); run sudo ./install.sh again"
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${install[@]}" ||
		die "apt-get install failed (see above); run sudo ./install.sh again"
}

has_group() {
	if [[ -n $ROOT ]]; then grep -q "^$1:" "$ROOT/etc/group" 2>/dev/null; else getent group "$1" >/dev/null; fi
}
has_user() {
	if [[ -n $ROOT ]]; then grep -q "^$1:" "$ROOT/etc/passwd" 2>/dev/null; else getent passwd "$1" >/dev/null; fi
}
user_in_group() { # user group
	if [[ -n $ROOT ]]; then
		grep -Eq "^$2:[^:]*:[^:]*:(.*,)?$1(,|$)" "$ROOT/etc/group" 2>/dev/null
	else
		id -nG "$1" 2>/dev/null | tr ' ' '\n' | grep -qx "$2"
	fi
}

step_user() {
	local did=0 g add=()
	for g in video gpio; do
		if ! has_group "$g"; then
			run groupadd --system "$g"
			did=1
		fi
	done
	if ! has_user "$APP"; then
		run useradd --system --user-group --home-dir "/var/lib/$APP" --no-create-home \
			--shell /usr/sbin/nologin --comment "Edge emotion monitor" "$APP"
		did=1
	fi
	for g in video gpio; do
		user_in_group "$APP" "$g" || add+=("$g")
	done
	if ((${#add[@]})); then
		run usermod --append --groups "$(IFS=,; echo "${add[*]}")" "$APP"
		did=1
	fi
	if ((did)); then
		step "user $APP" "in groups video and gpio (camera and GPIO access)"
	else
		step "user $APP" "nothing to do"
	fi
}

# The Pi's owner (who ran sudo) joins the service's group: the log folder is 0750
# emotion-edge:emotion-edge, and `emotion-edge tail /var/log/emotion-edge/events.jsonl`
# must work for them (from their next login; `newgrp emotion-edge` for this shell).
step_owner() {
	local user=${SUDO_USER:-}
	if [[ -z $user || $user == root ]] || ! has_user "$user"; then
		return
	fi
	if user_in_group "$user" "$APP"; then
		step "user $user" "nothing to do (in group $APP: reads the event log)"
		return
	fi
	run usermod --append --groups "$APP" "$user"
	step "user $user" "added to group $APP, to read the event log (from the next login; now: newgrp $APP)"
}

step_venv() {
	if [[ -z $ROOT ]]; then
		[[ -x $SYSTEM_PYTHON ]] || die "$SYSTEM_PYTHON not found: install python3 (apt-get install python3-venv)"
		python_ok "$SYSTEM_PYTHON" ||
			die "Python 3.11 or newer is needed; $SYSTEM_PYTHON is $(python_version "$SYSTEM_PYTHON") (use Raspberry Pi OS Bookworm)"
	fi
	if [[ -x $VENV/bin/python ]] && grep -qi '^include-system-site-packages *= *true' "$VENV/pyvenv.cfg" 2>/dev/null; then
		step "venv" "nothing to do ($VENV)"
		return
	fi
	step "venv" "creating $VENV (sees apt's numpy, picamera2 and lgpio)"
	# --clear: a venv without system site-packages (old install) is rebuilt.
	run "$SYSTEM_PYTHON" -m venv --clear --system-site-packages "$VENV"
	CHANGED=1
}

step_pip() {
	local stamp="$VENV/.$APP-stamp" want
	want="system $(source_fingerprint)"
	if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
		step "python packages" "nothing to do (same source as installed)"
		return
	fi
	step "python packages" "installing $APP and its pinned dependencies ($CONSTRAINTS)"
	if [[ -n $ROOT ]]; then
		run "$VENV/bin/python" -m pip install --disable-pip-version-check --constraint "$CONSTRAINTS" "$SRC"
		return
	fi
	# Build from a clean copy: a root-owned build/ or *.egg-info left in the checkout
	# would break a later --local install by the normal user.
	local build name parts=(pyproject.toml edge convert) ok=1
	for name in README.md LICENSE LICENSE.txt; do
		if [[ -e $SRC/$name ]]; then parts+=("$name"); fi
	done
	build=$(mktemp -d)
	tar -C "$SRC" --exclude=__pycache__ --exclude='*.pyc' -cf - "${parts[@]}" | tar -C "$build" -xf -
	run "$VENV/bin/python" -m pip install --disable-pip-version-check --constraint "$CONSTRAINTS" "$build" || ok=0
	rm -rf "$build"
	((ok)) || die "pip could not install the packages (network? see above); run sudo ./install.sh again"
	# The apt-built picamera2/lgpio need apt's numpy: say where numpy comes from.
	say "    numpy: $("$VENV/bin/python" -c 'import numpy; print(numpy.__version__, "from", numpy.__file__.rsplit("/", 2)[0])')"
	printf '%s\n' "$want" >"$stamp"
	CHANGED=1
}

# The face-detector model files that edge/detectors/registry.py lists, one a line; read
# with any Python 3 without importing edge (the registry module needs nothing else).
detector_models() { # python
	"$1" -c 'import runpy, sys; print("\n".join(runpy.run_path(sys.argv[1])["model_files"]()))' \
		"$SRC/edge/detectors/registry.py" ||
		die "could not read the detector models' list from edge/detectors/registry.py"
}

step_models() {
	local name path wrote=0
	install -d -m 0755 "$MODELS"
	for name in "${SHIPPED_MODELS[@]}"; do
		[[ -f $SRC/models/$name ]] || die "models/$name is missing from $SRC: clone the repository again"
		if copy_if_changed "$SRC/models/$name" "$MODELS/$name" 0644; then wrote=1; fi
	done
	# Face models already fetched into this checkout (--local) are copied, not downloaded
	# again; which files a detector needs is edge/detectors/registry.py's to say.
	local missing=0 names
	names=$(detector_models "$SYSTEM_PYTHON") || exit 1
	for name in $names; do
		path=$SRC/models/$name
		if [[ -f $path ]] && copy_if_changed "$path" "$MODELS/$name" 0644; then wrote=1; fi
		[[ -f $MODELS/$name ]] || missing=1
	done
	if ((!missing)); then
		if ((wrote)); then step "models" "updated ($MODELS)"; else step "models" "nothing to do"; fi
	else
		step "models" "fetching the face-detector models into $MODELS"
		run "$VENV/bin/python" -m edge.detectors.fetch_models --dest "$MODELS" ||
			die "could not fetch the face-detector models (network? see above); run sudo ./install.sh again"
		wrote=1
	fi
	if ((wrote)); then CHANGED=1; fi
	verify_models "$VENV/bin/python" "$MODELS"
}

# Files that exist prove nothing: LiteRT must load and run each model on this CPU, on
# every install (after a crash, a rerun must not pass as "nothing to do").
verify_models() { # python folder
	local rc=0
	run "$1" -m edge.detectors.fetch_models --dest "$2" --verify || rc=$?
	((rc == 0)) || die "LiteRT could not run the models in $2 (exit $rc; the model it was running is named above): on a Pi, use Raspberry Pi OS 64-bit; then run ./install.sh again"
}

step_config() {
	local default="$SRC/edge/default.toml" tmp
	[[ -f $default ]] || die "edge/default.toml is missing from $SRC: clone the repository again"
	install -d -m 0755 "$ETC"
	tmp=$(mktemp)
	commented_config "$default" >"$tmp"
	copy_if_changed "$tmp" "$ETC/config.toml.default" 0644 || true
	if [[ -e $ETC/config.toml ]]; then
		rm -f "$tmp"
		step "config" "kept your $ETC/config.toml (new defaults: config.toml.default)"
		# A config the service cannot read would stop it at boot: repair the group.
		if [[ -z $ROOT && $(stat -c %G "$ETC/config.toml") != "$APP" && $(stat -c %A "$ETC/config.toml") != ???????r* ]]; then
			run chgrp "$APP" "$ETC/config.toml"
		fi
		return
	fi
	# 0640 root:emotion-edge: it may hold a camera URL with a password.
	install -m 0640 "$tmp" "$ETC/config.toml"
	rm -f "$tmp"
	run chown "root:$APP" "$ETC/config.toml"
	step "config" "wrote $ETC/config.toml (all defaults; edit it to change settings)"
}

# The unit has no network (PrivateNetwork=yes); outputs that need some ([web], [mqtt]) get a
# drop-in that opens just that, computed from the config by systemd/network_dropin.py.
step_network() {
	local want tmp
	want=$(PYTHONPATH="$SRC" "$(edge_python)" "$SRC/systemd/network_dropin.py" "$ETC/config.toml") ||
		die "could not read $ETC/config.toml to decide the service's network access (see above)"
	if [[ -z $want ]]; then
		if [[ -f $DROPIN ]]; then
			rm -f "$DROPIN"
			step "network" "no output needs the network: removed $DROPIN"
			if [[ -n $ROOT || $SYSTEMD_UP == 1 ]]; then run systemctl daemon-reload; fi
			UNIT_CHANGED=1
		else
			step "network" "nothing to do (no output needs the network: PrivateNetwork=yes)"
		fi
		return
	fi
	tmp=$(mktemp)
	printf '%s\n' "$want" >"$tmp"
	install -d -m 0755 "$(dirname "$DROPIN")"
	if copy_if_changed "$tmp" "$DROPIN" 0644; then
		step "network" "installed $DROPIN ($(grep -c '^IPAddressAllow=' "$tmp") allow rule(s))"
		# A changed drop-in takes effect only after a reload (the restart alone keeps the old one).
		if [[ -n $ROOT || $SYSTEMD_UP == 1 ]]; then run systemctl daemon-reload; fi
		UNIT_CHANGED=1
	else
		step "network" "nothing to do ($DROPIN is current)"
	fi
	rm -f "$tmp"
}

# The python that runs the program itself: the venv's once step_pip made it; with --root
# (nothing is installed there) $EMOTION_EDGE_PYTHON, a python that has the device's packages.
edge_python() {
	if [[ -x $VENV/bin/python ]]; then echo "$VENV/bin/python"; else echo "${EMOTION_EDGE_PYTHON:-$SYSTEM_PYTHON}"; fi
}

# config_get SECTION.KEY ...: the installed config's values, one a line, as the program
# reads them (the default where the file leaves a key out): emotion-edge config --get.
config_get() {
	local conf=()
	[[ -f $ETC/config.toml ]] && conf=(--config "$ETC/config.toml")
	PYTHONPATH="$SRC" "$(edge_python)" -m edge config "${conf[@]}" --get "$@"
}

# config_set_web KEY VALUE: set a [web] key (a quoted string) in the installed config.
config_set_web() {
	local line="$1 = \"$2\""
	if grep -q '^\[web\]' "$ETC/config.toml"; then
		if grep -Eq "^#? *$1 *=" "$ETC/config.toml"; then
			sed -i -E "/^\[web\]/,/^\[/{s|^#? *$1 *=.*$|$line|}" "$ETC/config.toml"
		else
			sed -i "/^\[web\]/a $line" "$ETC/config.toml"
		fi
	else
		printf '\n[web]\n%s\n' "$line" >>"$ETC/config.toml"
	fi
}

# make_tls_pair CERT KEY: a self-signed certificate (10 years) for this host's names and
# addresses; the key is made 0640 root:emotion-edge before a byte is written to it.
make_tls_pair() {
	local cert=$1 key=$2 name san addr
	command -v openssl >/dev/null 2>&1 || die "--web-tls needs openssl: sudo apt-get install openssl"
	name=$(hostname 2>/dev/null || echo raspberrypi)
	san="DNS:$name,DNS:$name.local,DNS:localhost,IP:127.0.0.1,IP:::1"
	for addr in $(hostname -I 2>/dev/null || true); do san="$san,IP:$addr"; done
	install -m 0640 /dev/null "$key"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
		-subj "/CN=$name" -addext "subjectAltName=$san" -keyout "$key" -out "$cert" 2>/dev/null ||
		die "openssl could not make a certificate in $ETC"
	chmod 0644 "$cert"
	run chown "root:$APP" "$key"
}

# --web-tls (before the service starts): HTTPS for the page.
step_web_tls() {
	local cert="$ETC/web.crt" key="$ETC/web.key"
	if [[ -s $cert && -s $key ]]; then
		step "web tls" "kept your $cert and $key"
	else
		make_tls_pair "$cert" "$key"
		step "web tls" "made a self-signed certificate: $cert (key: $key)"
	fi
	local now=()
	mapfile -t now < <(config_get web.tls_cert web.tls_key)
	if [[ ${now[0]-} == "${cert#"$ROOT"}" && ${now[1]-} == "${key#"$ROOT"}" ]]; then
		return
	fi
	config_set_web tls_cert "${cert#"$ROOT"}"
	config_set_web tls_key "${key#"$ROOT"}"
	[[ $(config_get web.tls_cert) == "${cert#"$ROOT"}" ]] ||
		die "could not set [web] tls_cert in $ETC/config.toml: set tls_cert and tls_key yourself"
	step "web tls" "set [web] tls_cert and tls_key in $ETC/config.toml"
	CHANGED=1
}

# --kiosk, part 1 (before the service starts): the page must be on.
step_kiosk_config() {
	if [[ $(config_get web.enabled) == true ]]; then
		step "kiosk" "nothing to do: [web] enabled = true in $ETC/config.toml"
		return
	fi
	if grep -q '^\[web\]' "$ETC/config.toml"; then
		sed -i -E '/^\[web\]/,/^\[/{s/^#? *enabled *= *false *$/enabled = true/}' "$ETC/config.toml"
		[[ $(config_get web.enabled) == true ]] || sed -i '/^\[web\]/a enabled = true' "$ETC/config.toml"
	else
		printf '\n[web]\nenabled = true\n' >>"$ETC/config.toml"
	fi
	[[ $(config_get web.enabled) == true ]] ||
		die "could not turn on [web] in $ETC/config.toml: set enabled = true in its [web] section, then run sudo ./install.sh --kiosk again"
	step "kiosk" "turned on the web page: [web] enabled = true in $ETC/config.toml"
	CHANGED=1
}

kiosk_user() {
	local user=${SUDO_USER:-}
	if [[ -z $user || $user == root ]]; then
		die "--kiosk: run it with sudo from the account that logs in to the Pi's desktop (sudo ./install.sh --kiosk), so the kiosk starts in that desktop session"
	fi
	printf '%s\n' "$user"
}

# The kiosk in Chinese ([web] language = "zh-CN", or a Chinese locale with the browser's
# choice) needs a CJK font: the page loads none from the internet.
kiosk_fonts() {
	local lang
	lang=$(config_get web.language)
	if [[ $lang != zh-CN && ! ($lang == "" && ${LANG:-} == zh*) ]]; then return 0; fi
	if [[ -z $ROOT ]] && fc-list :lang=zh family 2>/dev/null | grep -q .; then
		step "kiosk fonts" "nothing to do (a Chinese font is installed)"
		return 0
	fi
	step "kiosk fonts" "installing fonts-noto-cjk (the kiosk speaks Chinese)"
	run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-noto-cjk ||
		die "apt-get install fonts-noto-cjk failed (see above); run sudo ./install.sh --kiosk again"
}

# --kiosk, part 2: Chromium full-screen on the page at every desktop login. An XDG
# autostart entry: Raspberry Pi OS's labwc and wayfire sessions both run them (through
# lxsession-xdg-autostart), and it leaves the user's own autostart files alone.
step_kiosk() {
	local user home port entry tmp pkg
	user=$(kiosk_user)
	home="$ROOT$( (getent passwd "$user" 2>/dev/null || true) | cut -d: -f6)"
	[[ $home != "$ROOT" ]] || home="$ROOT/home/$user"
	port=$(config_get web.port)
	if command -v chromium-browser >/dev/null 2>&1 || command -v chromium >/dev/null 2>&1; then
		step "kiosk browser" "nothing to do (Chromium is installed)"
	else
		pkg=chromium
		if [[ -n $ROOT ]] || is_raspberry_pi_os || pkg_available chromium-browser; then pkg=chromium-browser; fi
		step "kiosk browser" "installing $pkg"
		run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$pkg" ||
			die "apt-get install $pkg failed (see above); run sudo ./install.sh --kiosk again"
	fi
	kiosk_fonts
	copy_if_changed "$SRC/systemd/kiosk.sh" "$OPT/kiosk.sh" 0755 || true
	entry="$home/.config/autostart/$AUTOSTART_NAME"
	tmp=$(mktemp)
	cat >"$tmp" <<EOF
[Desktop Entry]
Type=Application
Name=emotion-edge kiosk
Comment=The emotion monitor's page full-screen (written by install.sh --kiosk; --uninstall removes it)
Exec=/opt/$APP/kiosk.sh http://127.0.0.1:$port/kiosk
X-GNOME-Autostart-enabled=true
EOF
	install -d -m 0755 "$(dirname "$entry")"
	if copy_if_changed "$tmp" "$entry" 0644; then
		run chown "$user:" "$(dirname "$entry")" "$entry"
		step "kiosk" "Chromium opens http://127.0.0.1:$port/kiosk full-screen when $user's desktop starts ($entry)"
	else
		step "kiosk" "nothing to do ($entry is current)"
	fi
	rm -f "$tmp"
	if [[ -n $ROOT ]] || command -v raspi-config >/dev/null 2>&1; then
		# B4: boot to the desktop, logged in automatically; blanking 1: the screen stays on.
		run raspi-config nonint do_boot_behaviour B4 || say "    (could not set desktop autologin: raspi-config, System Options, Boot / Auto Login)"
		run raspi-config nonint do_blanking 1 || say "    (could not turn off screen blanking: raspi-config, Display Options, Screen Blanking)"
	else
		say "    no raspi-config here: set the desktop to log in automatically and the screen never to blank"
	fi
}

step_unit() {
	local wrote=0
	if copy_if_changed "$SRC/systemd/$APP.service" "$UNIT" 0644; then wrote=1; fi
	install -d -m 0755 "$OPT/docs"
	copy_if_changed "$SRC/docs/raspberry-pi.md" "$OPT/docs/raspberry-pi.md" 0644 || true
	copy_if_changed "$SRC/systemd/README.md" "$OPT/docs/systemd.md" 0644 || true
	# The technician's commands (emotion-edge tail ...) on the PATH.
	if [[ $(readlink "$LINK" 2>/dev/null) != "/opt/$APP/venv/bin/$APP" ]]; then
		install -d -m 0755 "$(dirname "$LINK")"
		ln -sfn "/opt/$APP/venv/bin/$APP" "$LINK"
		say "    linked $LINK"
		wrote=1
	fi
	if ((wrote)); then
		step "service unit" "installed $UNIT"
		if [[ -n $ROOT || $SYSTEMD_UP == 1 ]]; then run systemctl daemon-reload; fi
		UNIT_CHANGED=1
	else
		step "service unit" "nothing to do"
	fi
}

# The check opens the camera and claims the GPIO pins, which a running service holds:
# so it runs before the service starts (fresh install, or a restart after an upgrade).
run_check() {
	local check=(runuser -u "$APP" -- env "LOGS_DIRECTORY=/var/log/$APP" "CONFIGURATION_DIRECTORY=/etc/$APP"
		"EMOTION_EDGE_MODELS=/opt/$APP/models" "/opt/$APP/venv/bin/$APP" check --config "/etc/$APP/config.toml")
	if [[ -n $ROOT ]]; then
		run "${check[@]}"
		return
	fi
	install -d -m 0750 -o "$APP" -g "$APP" "/var/log/$APP" "/var/lib/$APP"
	say "    running: ${check[*]}"
	# lgpio writes FIFOs into the working directory: use the service's.
	if ! (cd "/var/lib/$APP" && "${check[@]}"); then
		die "installed, but the check above failed: fix what it says (docs/raspberry-pi.md, Troubleshooting), then run sudo ./install.sh again to start the service"
	fi
}

step_service() {
	if [[ -n $ROOT ]]; then
		run systemctl enable "$APP"
		if ((START)); then
			run_check
			run systemctl start "$APP"
			step "service" "enabled at boot, checked and started"
		else
			step "service" "enabled at boot, not started (--no-start)"
		fi
		return
	fi
	if ((!SYSTEMD_UP)); then
		systemctl enable "$APP" >/dev/null 2>&1 || die "systemctl enable $APP failed"
		step "service" "enabled at boot; systemd is not running here (image build?), not started"
		return
	fi
	local enabled=1 active=1
	systemctl is-enabled --quiet "$APP" 2>/dev/null || enabled=0
	systemctl is-active --quiet "$APP" 2>/dev/null || active=0
	if ((!enabled)); then run systemctl enable "$APP" || die "systemctl enable $APP failed"; fi
	if ((!START)); then
		step "service" "enabled at boot, not started (--no-start)"
		return
	fi
	if ((active && !CHANGED && !UNIT_CHANGED)); then
		local status
		status=$(systemctl show -p StatusText --value "$APP" 2>/dev/null || true)
		step "service" "nothing to do: running${status:+ ($status)}"
		return
	fi
	if ((active)); then run systemctl stop "$APP"; fi
	run_check
	# A unit that hit its start limit (e.g. while the camera was unplugged) needs a reset.
	systemctl reset-failed "$APP" >/dev/null 2>&1 || true
	# Type=notify: this returns once the daemon says READY=1, or fails.
	run systemctl start "$APP" ||
		die "the service did not start: see  journalctl -u $APP -n 50  and docs/raspberry-pi.md"
	step "service" "enabled at boot and running"
}

system_install() {
	need_root
	check_platform
	set_system_paths
	CHANGED=0 UNIT_CHANGED=0
	say "Installing $APP from $SRC${ROOT:+ under $ROOT (commands are only printed)}"
	step_apt
	step_user
	step_owner
	step_venv
	step_pip
	step_models
	step_config
	if ((KIOSK)); then step_kiosk_config; fi
	if ((WEB_TLS)); then step_web_tls; fi
	step_network
	step_unit
	step_service
	if ((KIOSK)); then step_kiosk; fi
	local web=() scheme=http
	mapfile -t web < <(config_get web.enabled web.tls_cert web.port)
	if [[ ${web[0]-} == true ]]; then
		[[ -n ${web[1]-} ]] && scheme=https
		say "Web page:              $scheme://127.0.0.1:${web[2]-}/ (on this Pi)"
	fi
	say "Done. Follow it with:  journalctl -u $APP -f"
	say "Events:                $APP tail /var/log/$APP/events.jsonl"
	say "Settings:              /etc/$APP/config.toml, then: sudo systemctl restart $APP"
}

system_uninstall() {
	need_root --uninstall
	set_system_paths
	if [[ -f $UNIT ]]; then
		if [[ -n $ROOT || $SYSTEMD_UP == 1 ]]; then
			run systemctl disable --now "$APP" || true
		else
			run systemctl disable "$APP" || true
		fi
		rm -f "$UNIT"
		if [[ -n $ROOT || $SYSTEMD_UP == 1 ]]; then run systemctl daemon-reload; fi
		step "service" "stopped, disabled and removed $UNIT"
	else
		step "service" "nothing to do (not installed)"
	fi
	if [[ -f $DROPIN ]]; then
		rm -f "$DROPIN"
		step "network" "removed $DROPIN"
	fi
	local entry
	for entry in "$ROOT"/home/*/.config/autostart/"$AUTOSTART_NAME" "$ROOT"/root/.config/autostart/"$AUTOSTART_NAME"; do
		[[ -f $entry ]] || continue
		rm -f "$entry"
		step "kiosk" "removed $entry (Chromium no longer starts at login)"
	done
	if [[ -e $OPT || -L $LINK ]]; then
		rm -rf "$OPT"
		rm -f "$LINK"
		step "program" "removed $OPT (venv, models) and $LINK"
	else
		step "program" "nothing to do"
	fi
	if ((PURGE)); then
		rm -rf "$ETC" "$ROOT/var/log/$APP" "$ROOT/var/lib/$APP" "$ROOT/etc/systemd/system/$APP.service.d"
		step "data" "removed config, logs and state"
		if has_user "$APP"; then run userdel "$APP"; fi
		step "user $APP" "removed (the video and gpio groups stay)"
	else
		step "kept" "$ETC (your config), $ROOT/var/log/$APP (event logs), the $APP user; --uninstall --purge removes them"
	fi
}

# --- laptop / CI install -----------------------------------------------------------------

local_install() {
	local py=${PYTHON:-python3} venv="$SRC/.venv" extras="" stamp_file line want
	command -v "$py" >/dev/null 2>&1 || die "$py not found: install Python 3.11 or newer"
	python_ok "$py" || die "Python 3.11 or newer is needed; $py is $(python_version "$py")"
	((DEV)) && extras="host,test"
	say "Installing $APP for development in $venv"

	if [[ -x $venv/bin/python ]] && "$venv/bin/python" -c '' 2>/dev/null; then
		step "venv" "nothing to do"
	else
		step "venv" "creating $venv with $py ($(python_version "$py"))"
		"$py" -m venv --clear "$venv" ||
			die "could not create $venv (on Debian/Ubuntu: sudo apt install python3-venv)"
	fi

	stamp_file="$venv/.$APP-stamp"
	line=$(cat "$stamp_file" 2>/dev/null || true)
	if stamp_covers "$line" "$extras"; then
		step "python packages" "nothing to do (pyproject.toml unchanged${extras:+, extras $extras installed})"
	else
		# Keep extras installed earlier (a --dev venv stays a --dev venv).
		if [[ $line == sha=* ]]; then extras=$(merge_extras "${line##*extras=}" "$extras"); fi
		step "python packages" "installing $APP (editable)${extras:+ with extras $extras}"
		(cd "$SRC" && "$venv/bin/python" -m pip install --disable-pip-version-check -e ".${extras:+[$extras]}") ||
			die "pip install failed (network? see above); run ./install.sh --local again"
		local_stamp_wanted "$extras" >"$stamp_file"
	fi

	local name names have=1
	names=$(detector_models "$py") || exit 1
	for name in $names; do
		[[ -f $SRC/models/$name ]] || have=0
	done
	if ((have)); then
		step "face models" "nothing to do"
	else
		step "face models" "fetching into $SRC/models"
		"$venv/bin/python" -m edge.detectors.fetch_models --dest "$SRC/models" ||
			die "could not fetch the face-detector models (see above)"
	fi
	verify_models "$venv/bin/python" "$SRC/models"
	((DEV)) && dev_tools
	say "Done. Try:  .venv/bin/emotion-edge run"
	((DEV)) && say "Tests:     .venv/bin/python -m pytest -n auto   (fast subset: -m 'not slow')"
	return 0
}

# The test tools from Debian: installed when root, else named for the user to install.
dev_tools() {
	local i missing=()
	for i in "${!DEV_COMMANDS[@]}"; do
		command -v "${DEV_COMMANDS[$i]}" >/dev/null 2>&1 || missing+=("${DEV_DEBS[$i]}")
	done
	# The kiosk's tests screenshot it in Chinese too: a CJK font, else boxes.
	fc-list :lang=zh family 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
	if ((${#missing[@]} == 0)); then
		step "test tools" "nothing to do (${DEV_DEBS[*]})"
	elif [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
		step "test tools" "installing ${missing[*]}"
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/dev/null ||
			die "apt-get could not install ${missing[*]}; install them, then run ./install.sh --local --dev again"
	else
		die "the tests need these Debian packages: sudo apt-get install ${missing[*]}"
	fi
	# The broker is started by the tests themselves, on a free port: not as a service.
	if [[ $EUID -eq 0 ]] && command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
		systemctl disable --now mosquitto >/dev/null 2>&1 || true
	fi
	return 0
}

local_uninstall() {
	if [[ -d $SRC/.venv ]]; then
		rm -rf "$SRC/.venv"
		step "venv" "removed $SRC/.venv"
	else
		step "venv" "nothing to do"
	fi
}

# --- main --------------------------------------------------------------------------------

main() {
	LOCAL=0 DEV=0 START=1 UNINSTALL=0 PURGE=0 KIOSK=0 WEB_TLS=0 ROOT=""
	while (($#)); do
		case $1 in
		--local) LOCAL=1 ;;
		--dev) DEV=1 ;;
		--no-start) START=0 ;;
		--kiosk) KIOSK=1 ;;
		--web-tls) WEB_TLS=1 ;;
		--uninstall) UNINSTALL=1 ;;
		--purge) PURGE=1 ;;
		--root)
			[[ $# -ge 2 && -n $2 ]] || die "--root needs a folder"
			ROOT=$2
			shift
			;;
		--root=*) ROOT=${1#--root=} ;;
		-h | --help)
			usage
			return 0
			;;
		*) die "unknown option '$1' (see ./install.sh --help)" ;;
		esac
		shift
	done
	if ((DEV && !LOCAL)); then die "--dev goes with --local (the Pi never needs TensorFlow)"; fi
	if ((PURGE && !UNINSTALL)); then die "--purge goes with --uninstall"; fi
	if ((WEB_TLS && (LOCAL || UNINSTALL))); then die "--web-tls is for the Pi install (sudo ./install.sh --web-tls)"; fi
	# The kiosk's own Chromium opens http://127.0.0.1 and would meet a self-signed certificate.
	if ((WEB_TLS && KIOSK)); then die "--web-tls and --kiosk do not go together yet: the kiosk's browser on the Pi opens the page over plain HTTP"; fi
	if ((KIOSK && (LOCAL || UNINSTALL))); then die "--kiosk is for the Pi install (sudo ./install.sh --kiosk); --uninstall removes it"; fi
	if [[ -n $ROOT ]]; then
		((LOCAL)) && die "--root is for the system install, not --local"
		[[ -d $ROOT ]] || die "--root $ROOT: no such folder"
		ROOT=$(cd "$ROOT" && pwd)
		[[ $ROOT != / ]] || ROOT=""
	fi
	if ((LOCAL)); then
		if ((UNINSTALL)); then local_uninstall; else local_install; fi
	elif ((UNINSTALL)); then
		system_uninstall
	else
		system_install
	fi
}

# Sourcing the file (tests) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
