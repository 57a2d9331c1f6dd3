#!/usr/bin/env bash
# Build the Dockerfile and check the image, on a machine without Docker's daemon or a working
# container runtime and without Docker Hub:
#  1. a local stand-in for the pinned base (python:3.11.11-slim-bookworm): Debian bookworm from
#     debootstrap (the mirror apt uses here), Debian's python3 with `python3 -m venv /usr/local`
#     so that python and pip are on PATH as in the official image; imported once with that exact
#     name and reused afterwards (the real base stays pinned in the Dockerfile; where the real
#     image is present it is used as is);
#  2. `podman build --isolation=chroot --format docker --pull=never` (docker format keeps the
#     HEALTHCHECK), pip inside it with this machine's CA bundle and pip configuration;
#  3. the image's filesystem, read-only, entered with chroot as its non-root user, tmpfs on /tmp
#     and /data, the image's ENV, ENTRYPOINT, CMD and working directory: /healthz, /readyz and the
#     image's own HEALTHCHECK command must answer, and the image's user, HEALTHCHECK, packages and
#     /app are checked.
# Usage: deploy/build-image.sh [TAG]   (run as root; installs podman and debootstrap with apt)
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-interview-exit-bot:check}
BASE=$(sed -n 's/^FROM[[:space:]]\+\([^[:space:]]\+\).*/\1/p' Dockerfile | head -n1)
STAND_IN_LABEL=interview-exit-bot.stand-in
BUILD_TIMEOUT=${BUILD_IMAGE_TIMEOUT:-900}
START_TIMEOUT=60

TIMES=()
WORK=
SERVER_PID=
fail() {
    echo "build-image: FAILED: $*" >&2
    exit 1
}
step() { # step NAME COMMAND...: run it, print how long it took
    local name=$1 start=$SECONDS
    shift
    echo "== $name =="
    "$@" || fail "step '$name' (exit $?)"
    TIMES+=("$(printf '%4ds  %s' $((SECONDS - start)) "$name")")
    echo "   ($((SECONDS - start))s)"
}
cleanup() {
    local rc=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -- "-$SERVER_PID" 2>/dev/null || kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    podman image unmount "$TAG" >/dev/null 2>&1 || true
    [ -z "$WORK" ] || rm -rf --one-file-system "$WORK"
    echo "== step times =="
    [ ${#TIMES[@]} -eq 0 ] || printf '%s\n' "${TIMES[@]}"
    echo "total ${SECONDS}s, exit $rc"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || fail "run as root (debootstrap, podman's image mount and chroot need it)"
[ -n "$BASE" ] || fail "no FROM line in Dockerfile"
WORK=$(mktemp -d /tmp/build-image.XXXXXX)

APT_UPDATED=
apt_need() { # apt_need PACKAGE...: install the ones not installed yet (idempotent)
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || { echo "please install: ${missing[*]}" >&2; return 1; }
    if [ -z "$APT_UPDATED" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

system_packages() {
    apt_need podman debootstrap uidmap fuse-overlayfs curl python3
}

# The Debian mirror apt uses on this machine, as apt itself resolves its sources (one-line or
# deb822): nothing here names a host.
apt_repo() { # apt_repo CODENAME: the repository URI apt has for that suite's main component
    # shellcheck disable=SC2016 # apt's format, not the shell's
    apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' "Codename: $1" 'Component: main' |
        head -n1
}

stand_in() {
    if podman image exists "$BASE"; then
        local label
        label=$(podman image inspect --format "{{index .Labels \"$STAND_IN_LABEL\"}}" "$BASE")
        echo "reusing $BASE (${label:-the real image})"
        return 0
    fi
    local mirror root
    mirror=$(apt_repo bookworm)
    [ -n "$mirror" ] || { echo "apt has no bookworm main repository configured" >&2; return 1; }
    root="$WORK/rootfs"
    echo "debootstrap bookworm from $mirror"
    # ca-certificates and netbase as in the official slim image; tzdata deliberately not, so the
    # Dockerfile's own apt line is what the check below finds.
    timeout 900 debootstrap --variant=minbase \
        --include=ca-certificates,netbase,python3,python3-venv bookworm "$root" "$mirror" \
        >"$WORK/debootstrap.log" 2>&1 || { tail -n 30 "$WORK/debootstrap.log" >&2; return 1; }
    # The stand-in's apt uses the same repositories as this machine's (updates and security too).
    : >"$root/etc/apt/sources.list"
    local suite uri
    for suite in bookworm bookworm-updates bookworm-security; do
        uri=$(apt_repo "$suite")
        [ -z "$uri" ] || echo "deb $uri $suite main" >>"$root/etc/apt/sources.list"
    done
    chroot "$root" python3 -m venv /usr/local
    chroot "$root" /usr/local/bin/pip --version
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log
    tar -C "$root" --numeric-owner -c . |
        podman import \
            --change "LABEL $STAND_IN_LABEL=debootstrap bookworm, Debian python3 in a venv at /usr/local" \
            --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change 'CMD ["python3"]' \
            - "$BASE"
    rm -rf --one-file-system "$root"
}

# pip inside the build: this machine's configuration (index, extra indexes, find-links, cert,
# constraints: `pip config list`, env vars included) as one file mounted at /etc/pip.conf, and
# every local path it names mounted read-only at the same place. No registry is named here.
PIP_VOLUMES=()
pip_config() {
    local conf="$WORK/pip.conf"
    python3 -m pip config list >"$WORK/pip-config.txt" 2>/dev/null || : >"$WORK/pip-config.txt"
    python3 - "$WORK/pip-config.txt" "$conf" >"$WORK/pip-paths.txt" <<'EOF'
import ast, configparser, os, sys
from urllib.parse import urlparse

settings, env = {}, {}
for line in open(sys.argv[1], encoding="utf-8"):
    key, sep, value = line.rstrip("\n").partition("=")
    if not sep or "." not in key:
        continue
    section, name = key.split(".", 1)
    value = ast.literal_eval(value)
    if section == ":env:":
        env[name] = value
    elif section in ("global", "install"):
        settings[name] = value
settings.update(env)  # environment variables win, as in pip
conf = configparser.ConfigParser(interpolation=None)
conf["global"] = settings
with open(sys.argv[2], "w", encoding="utf-8") as out:
    conf.write(out)
paths = set()
for name in ("cert", "client-cert", "constraint", "requirement", "find-links", "index-url", "extra-index-url"):
    for item in settings.get(name, "").split():
        path = urlparse(item).path if item.startswith("file:") else item
        if name.endswith("index-url"):
            # A local index's pages link to files beside it (../../files/…): its whole tree.
            path = os.path.dirname(path.rstrip("/"))
        if path.startswith("/") and path != "/" and os.path.exists(path):
            paths.add(os.path.realpath(path))
print("\n".join(sorted(p for p in paths if not p.startswith("/etc/ssl/certs"))))
EOF
    PIP_VOLUMES=(-v "$conf:/etc/pip.conf:ro")
    local path
    while IFS= read -r path; do
        [ -n "$path" ] && PIP_VOLUMES+=(-v "$path:$path:ro")
    done <"$WORK/pip-paths.txt"
    echo "pip configuration for the build:"
    sed 's/^/   /' "$conf"
    echo "   mounted: /etc/ssl/certs ${PIP_VOLUMES[*]}"
}

build() {
    local old new
    old=$(podman image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
    timeout "$BUILD_TIMEOUT" podman build --isolation=chroot --format docker --pull=never \
        -v /etc/ssl/certs:/etc/ssl/certs:ro "${PIP_VOLUMES[@]}" \
        -t "$TAG" -f Dockerfile .
    new=$(podman image inspect --format '{{.Id}}' "$TAG")
    # The image this tag had before (and its build's intermediate layers) would only fill the disk.
    if [ -n "$old" ] && [ "$old" != "$new" ]; then
        podman rmi "$old" >/dev/null 2>&1 || true
    fi
}

inspect() { # inspect GO-TEMPLATE: of the built image
    podman image inspect --format "$1" "$TAG"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

ROOT=
UID_GID=
image_facts() {
    local mnt user
    mnt=$(podman image mount "$TAG")
    [ -d "$mnt/usr" ] || { echo "podman image mount gave no filesystem: '$mnt'" >&2; return 1; }
    ROOT="$WORK/root"
    mkdir -p "$ROOT"
    ln -s "$mnt" "$WORK/image"
    user=$(inspect '{{.Config.User}}')
    UID_GID=$(awk -F: -v u="$user" '$1 == u || $3 == u { print $3 ":" $4 }' "$mnt/etc/passwd")
    echo "user: '$user' -> $UID_GID"
    [ "${UID_GID%%:*}" = 10001 ] || { echo "the image's user is not uid 10001: '$user' ($UID_GID)" >&2; return 1; }
    local health
    health=$(inspect '{{json .Config.Healthcheck}}')
    echo "healthcheck: $health"
    case "$health" in
        *healthz*) ;;
        *) echo "no HEALTHCHECK on /healthz in the image config" >&2; return 1 ;;
    esac
    local pkg
    for pkg in fonts-noto-cjk tzdata; do
        # shellcheck disable=SC2016 # dpkg-query's format
        chroot "$mnt" dpkg-query -W -f='${Package} ${Version} ${Status}\n' "$pkg" | grep "install ok installed" ||
            { echo "$pkg is not installed in the image" >&2; return 1; }
    done
    [ -e "$mnt/usr/share/zoneinfo/Asia/Shanghai" ] || { echo "no Asia/Shanghai zone" >&2; return 1; }
    # The Dockerfile installs the package "not editable; the source tree is then not needed at
    # run time": nothing under /app may be what runs.
    local left
    left=$(cd "$mnt/app" && find . -mindepth 1 -maxdepth 1 -printf '%f ')
    echo "/app holds: ${left:-nothing}"
    for pkg in bot handlers storage templates; do
        [ ! -e "$mnt/app/$pkg" ] || { echo "/app/$pkg is in the image: the source tree would shadow the installed package" >&2; return 1; }
    done
}

# Runs inside a private mount namespace: the image read-only, tmpfs /tmp and /data for its user,
# the host's /dev and a /proc, then the image's ENTRYPOINT + CMD with its ENV in its WORKDIR.
run_in_image() { # run_in_image PORT LOG
    local port=$1 log=$2 mnt
    mnt=$(readlink "$WORK/image")
    inspect '{{json .Config}}' >"$WORK/config.json"
    python3 - "$WORK/config.json" "$port" >"$WORK/run.args" <<'EOF'
import json, sys
config = json.load(open(sys.argv[1]))
env = [e for e in config.get("Env") or [] if not e.startswith(("BOT_PORT=", "BOT_HOST="))]
env += ["BOT_HOST=127.0.0.1", "BOT_PORT=" + sys.argv[2]]
argv = (config.get("Entrypoint") or []) + (config.get("Cmd") or [])
# NUL-separated: workdir, then env, then an empty field, then argv
print("\0".join([config.get("WorkingDir") or "/"] + env + [""] + argv), end="")
EOF
    # shellcheck disable=SC2016 # expanded by the inner shell
    setsid unshare --mount --propagation private --pid --fork bash -euc '
        root=$1 mnt=$2 ids=$3 args=$4
        mount --bind "$mnt" "$root"
        mount -o remount,bind,ro "$root"
        mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
        mount -t tmpfs -o "mode=0755,uid=${ids%%:*},gid=${ids##*:}" tmpfs "$root/data"
        mount --rbind /dev "$root/dev"
        mount -t proc proc "$root/proc"
        mapfile -d "" -t fields <"$args"
        workdir=${fields[0]} env=() i=1
        while [ -n "${fields[$i]}" ]; do env+=("${fields[$i]}"); i=$((i + 1)); done
        exec chroot --userspec="$ids" "$root" /usr/bin/env -i "${env[@]}" \
            /bin/sh -c "cd \"\$0\" && exec \"\$@\"" "$workdir" "${fields[@]:$((i + 1))}"
    ' _ "$ROOT" "$mnt" "$UID_GID" "$WORK/run.args" >"$log" 2>&1 &
    SERVER_PID=$!
}

probe() { # probe URL: HTTP status, or 000 when nothing answers
    curl -s -o "$WORK/probe.body" -w '%{http_code}' --max-time 5 "$1" || true
}

serve_check() {
    local port log="$WORK/serve.log" deadline code
    port=$(free_port)
    run_in_image "$port" "$log"
    deadline=$((SECONDS + START_TIMEOUT))
    code=000
    while [ $SECONDS -lt $deadline ]; do
        code=$(probe "http://127.0.0.1:$port/healthz")
        [ "$code" = 200 ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.5
    done
    if [ "$code" != 200 ]; then
        echo "/healthz never answered 200 (last: $code); the server's output:" >&2
        cat "$log" >&2
        return 1
    fi
    echo "/healthz 200: $(cat "$WORK/probe.body")"
    code=$(probe "http://127.0.0.1:$port/readyz")
    echo "/readyz $code: $(cat "$WORK/probe.body")"
    [ "$code" = 200 ] || { cat "$log" >&2; return 1; }
    # The image's own HEALTHCHECK command, run in the image as its user with its ENV.
    local hc_status
    inspect '{{json .Config.Healthcheck}}' >"$WORK/healthcheck.json"
    hc_status=$(python3 - "$WORK/healthcheck.json" <<'EOF'
import json, sys
test = (json.load(open(sys.argv[1])) or {}).get("Test") or []
print(test[1] if test[:1] == ["CMD-SHELL"] else "")
EOF
    )
    [ -n "$hc_status" ] || { echo "HEALTHCHECK is not a CMD-SHELL command" >&2; return 1; }
    # Entered beside the server: its mount namespace and root (the image), its user and ENV.
    local server env=()
    server=$(pgrep -P "$SERVER_PID" | head -n1)
    mapfile -t env < <(tr '\0' '\n' <"$WORK/run.args" | sed -n '2,/^$/p' | sed '/^$/d')
    nsenter --target "$server" --mount --root --wd \
        setpriv --reuid="${UID_GID%%:*}" --regid="${UID_GID##*:}" --clear-groups \
        /usr/bin/env -i "${env[@]}" /bin/sh -c "$hc_status" ||
        { echo "the image's HEALTHCHECK command failed" >&2; return 1; }
    echo "HEALTHCHECK command: exit 0"
    # What served: the image's user, on a read-only root, its database in /data.
    local uids
    uids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "/proc/$server/status")
    [ "$uids" = "${UID_GID%%:*} ${UID_GID%%:*} ${UID_GID%%:*} ${UID_GID%%:*}" ] ||
        { echo "the server runs as uids '$uids', not ${UID_GID%%:*}" >&2; return 1; }
    awk '$5 == "/" { split($6, o, ","); exit !(o[1] == "ro") }' "/proc/$server/mountinfo" ||
        { echo "the server's root is not read-only" >&2; return 1; }
    [ -s "/proc/$server/root/data/bot.db" ] ||
        { echo "no database at /data/bot.db" >&2; return 1; }
    echo "served as uid ${UID_GID%%:*} on a read-only root, database /data/bot.db"
    # Stopped as a container would be: SIGTERM to the server, which must end within 10 s.
    kill -TERM "$server"
    local rc=0
    timeout 10 tail --pid="$server" -f /dev/null || rc=$?
    wait "$SERVER_PID" || true
    SERVER_PID=
    sed 's/^/   | /' "$log" | grep -v 'alembic.runtime.migration: Running upgrade' | cut -c1-200
    [ "$rc" -eq 0 ] || { echo "the server did not stop within 10 s of SIGTERM" >&2; return 1; }
    grep -q 'stopped after' "$log" || { echo "the server logged no 'stopped after' line" >&2; return 1; }
}

step "system packages" system_packages
step "base stand-in ($BASE)" stand_in
step "pip configuration" pip_config
step "podman build ($TAG)" build
step "image config and filesystem" image_facts
step "serve from the image (read-only root, uid 10001)" serve_check
echo "build-image: OK ($TAG)"
