#!/usr/bin/env bash
# Build the NIMBUS image from this checkout: wheels on the host, then deploy/Dockerfile with the
# wheels as the build context (nothing is downloaded inside the build: it runs with no network).
#
#   deploy/build.sh                       # base: the Dockerfile's default (python:3.11-slim)
#   deploy/build.sh --base my/python:3.11 # any base with python3 + venv + useradd
#   deploy/build.sh --debootstrap         # no registry serves base images: make one with
#                                         # debootstrap (Debian bookworm + python3), cached in
#                                         # .local/deploy/, imported as localhost/nimbus-base
#   deploy/build.sh --tag localhost/nimbus:1.2.3
#
# ENGINE=podman|docker (default: podman if installed); PYTHON builds the wheels (default: the
# first of .venv/bin/python, python3.11, python3 whose version is the base image's). With podman,
# CONTAINERS_CONF defaults to deploy/podman/containers.conf (runc, no default ulimits).
# Prints the image tag on stdout; progress with timestamps on stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE=${NIMBUS_DEPLOY_STATE:-$ROOT/.local/deploy}
WHEELS=${WHEELS:-$STATE/wheels}
TAG=localhost/nimbus:latest
BASE=""
DEBIAN_SUITE=bookworm
BASE_PACKAGES=python3,python3-venv,ca-certificates

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) TAG=$2; shift 2 ;;
    --base) BASE=$2; shift 2 ;;
    --debootstrap) BASE=debootstrap; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if [ -z "${ENGINE:-}" ]; then
  if command -v podman >/dev/null; then ENGINE=podman; else ENGINE=docker; fi
fi
if [ "$ENGINE" = podman ]; then
  export CONTAINERS_CONF=${CONTAINERS_CONF:-$ROOT/deploy/podman/containers.conf}
fi

step() { printf '[build.sh %s] %s\n' "$(date +%T)" "$*" >&2; }
mkdir -p "$STATE"

# 1. The base image, when none can be pulled: Debian minbase + python3 from Debian's own
#    packages, as a tarball cached under .local/deploy/ (a second run skips debootstrap).
if [ "$BASE" = debootstrap ]; then
  BASE=localhost/nimbus-base:$DEBIAN_SUITE-python3
  tarball=$STATE/base-$DEBIAN_SUITE-$(echo "$BASE_PACKAGES" | tr ',' '-').tar
  if [ ! -s "$tarball" ]; then
    rootfs=$STATE/rootfs.tmp
    rm -rf "$rootfs"
    step "debootstrap $DEBIAN_SUITE (+$BASE_PACKAGES)"
    # The mirror: debootstrap's default unless DEBIAN_MIRROR names another.
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$DEBIAN_SUITE" "$rootfs" \
      ${DEBIAN_MIRROR:-} >"$STATE/debootstrap.log" 2>&1 \
      || { tail -20 "$STATE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
      "$rootfs"/usr/share/info/*
    tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  if ! "$ENGINE" image inspect "$BASE" >/dev/null 2>&1; then
    step "import $tarball as $BASE"
    "$ENGINE" import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE" >/dev/null
  fi
fi

# 2. Wheels of the project and every dependency, built by a Python of the image's own version:
#    dependencies carry markers on the full version (redis needs async-timeout below 3.11.3), so a
#    wheel set resolved by 3.11.7 can miss what the image's 3.11.2 needs. Built from a copy of the
#    sources (never in the shared checkout, where a concurrent build could clash in build/).
version_of() { "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null; }
if [ -n "$BASE" ]; then
  target=$("$ENGINE" run --rm --network=none --entrypoint python3 "$BASE" \
    -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')
else
  target=3.11  # the Dockerfile's default base: python:3.11-slim, the newest 3.11
fi
minor=$(echo "$target" | cut -d. -f1,2)
if [ -z "${PYTHON:-}" ]; then
  for candidate in "$ROOT/.venv/bin/python" "python$minor" python3 /usr/bin/python3; do
    version=$(version_of "$candidate") || continue
    case "$version" in
      "$target") PYTHON=$candidate; break ;;
      "$minor".*) PYTHON=${PYTHON:-$candidate} ;;  # same minor: used if no exact match
    esac
  done
  : "${PYTHON:?no Python $target on this host to build the wheels with: set PYTHON}"
fi
"$PYTHON" -m pip --version >/dev/null 2>&1 \
  || { echo "build.sh: $PYTHON has no pip (Debian: apt-get install python3-pip)" >&2; exit 1; }
step "wheels -> $WHEELS (Python $(version_of "$PYTHON") for an image with $target)"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
find "$ROOT" -maxdepth 1 -type f -name '[!.]*' -exec cp -p {} "$src/" \;
for dir in proxy sql supabase; do
  if [ -d "$ROOT/$dir" ]; then
    tar -C "$ROOT" --exclude=__pycache__ --exclude='*.pyc' -cf - "$dir" | tar -C "$src" -xf -
  fi
done
rm -rf "$WHEELS"
"$PYTHON" -m pip wheel --disable-pip-version-check --wheel-dir "$WHEELS" "$src" \
  >"$STATE/wheels.log" 2>&1 || { tail -30 "$STATE/wheels.log" >&2; exit 1; }

# 3. The image. --network=none: the build installs from the wheels only. --format docker keeps
#    HEALTHCHECK (podman's default OCI format has no field for it).
step "build $TAG${BASE:+ (base $BASE)}"
old=$("$ENGINE" image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
args=(build --network=none -f "$ROOT/deploy/Dockerfile" -t "$TAG")
if [ "$ENGINE" = podman ]; then args+=(--format docker); fi
if [ -n "$BASE" ]; then args+=(--build-arg "BASE_IMAGE=$BASE"); fi
"$ENGINE" "${args[@]}" "$WHEELS" >"$STATE/build.log" 2>&1 \
  || { tail -30 "$STATE/build.log" >&2; exit 1; }
new=$("$ENGINE" image inspect --format '{{.Id}}' "$TAG")
if [ -n "$old" ] && [ "$old" != "$new" ]; then
  "$ENGINE" rmi "$old" >/dev/null 2>&1 || true  # the image this tag named before (ours)
fi
# Build stages of earlier builds, left untagged (only ours: the Dockerfile labels its stage).
"$ENGINE" image prune --force --filter label=io.nimbus.stage=build >/dev/null 2>&1 || true
step "done"
echo "$TAG"
