#!/usr/bin/env bash
# The container, built and run for real: makes a Debian base image here (debootstrap + podman
# import; no registry needed), builds the Dockerfile on it with podman, runs `inq train quickstart`
# inside as the image's non-root user with runs/ on a host folder, and checks that run folder on
# the host: owned by the container user, checkpoints load with torch.load(weights_only=True),
# summary.json holds the final metrics. Prints build time, run time and the host listing.
#
#   bash scripts/container_check.sh [OVERRIDES...]     # e.g. inq.float_epochs=2 (default: as shipped)
#
# Exit 0: passed. Exit 77: this machine cannot run it; the last line says why. Else: failed.
# Cached between runs under $INQ_CONTAINER_CACHE (default ~/.cache/inq-container): the rootfs
# tarball, the wheels not on this disk; podman keeps the base image and the build's layers.
# pip installs the pins offline, from this machine's local wheel folders mounted into the build
# (scripts/container/wheelhouse.py); apt-get in the build uses the host's network.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${INQ_CONTAINER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/inq-container}
SUITE=bookworm  # its python3 (3.11) matches the cp311 wheels on this disk
MIRROR=${INQ_DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=localhost/inq-base:$SUITE
IMAGE=localhost/inq:check
USER_ID=10001  # the Dockerfile's USER
PY=${PYTHON:-$ROOT/.venv/bin/python}
mkdir -p "$CACHE"
LOG=$CACHE/last.log
: >"$LOG"

cannot() { echo "container check cannot run here: $*"; exit 77; }
fail() { echo "container check FAILED: $*"; exit 1; }
last_line() { grep -v '^\s*$' "$1" | tail -n 1 | cut -c1-300; }
seconds() { echo $(( $(date +%s) - $1 )); }

[ "$(id -u)" = 0 ] || cannot "needs root (podman runs as root with runc and cgroupfs here)"
[ -x "$PY" ] || cannot "no $PY (run bash scripts/setup.sh first)"

# 1. The tools, from Debian's packages when missing.
need=()
for tool in debootstrap podman runc; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || cannot "${need[*]} missing and no apt-get to install them"
  echo "installing ${need[*]} (apt-get)"
  if ! apt-get install -y -q "${need[@]}" >>"$LOG" 2>&1; then
    { apt-get update -q && apt-get install -y -q "${need[@]}"; } >>"$LOG" 2>&1 \
      || cannot "apt-get install ${need[*]} failed: $(last_line "$LOG")"
  fi
fi

# 2. podman as this machine allows: runc (crun refuses hybrid cgroups), cgroupfs, no default ulimits.
export CONTAINERS_CONF=$CACHE/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
events_logger = "file"
EOF
podman info >>"$LOG" 2>&1 || cannot "podman info fails: $(last_line "$LOG")"

# 3. The base image: a minimal Debian rootfs with python3, made once and cached.
if ! podman image exists "$BASE_IMAGE"; then
  tarball=$CACHE/debian-$SUITE-minbase.tar
  if [ ! -s "$tarball" ]; then
    echo "debootstrap $SUITE from $MIRROR (once)"
    rootfs=$CACHE/rootfs.partial
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$rootfs" "$MIRROR" \
      >>"$LOG" 2>&1 || cannot "debootstrap $SUITE from $MIRROR failed: $(last_line "$LOG")"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar --numeric-owner -C "$rootfs" -cf "$tarball.partial" . && mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
  fi
  podman import --change 'CMD ["/bin/bash"]' "$tarball" "$BASE_IMAGE" >>"$LOG" 2>&1 \
    || fail "podman import of $tarball: $(last_line "$LOG")"
fi
python_version=$(podman run --rm --network none "$BASE_IMAGE" dpkg-query -W -f '${Version}' python3 2>>"$LOG") \
  || cannot "podman run fails: $(last_line "$LOG")"
python_version=${python_version%%-*}  # 3.11.2-1+b1 -> 3.11.2, the Dockerfile's PYTHON_APT_VERSION

# 4. The pins offline: local wheel folders and a cached wheelhouse, mounted into the build.
listed=$("$PY" scripts/container/wheelhouse.py --lock requirements-lock.txt --cache "$CACHE" 2>>"$LOG") \
  || fail "wheelhouse: $(last_line "$LOG")"
mapfile -t mounts <<<"$listed"
volumes=()
for mount in "${mounts[@]}"; do volumes+=(--volume "$mount"); done

# The build context: only what the Dockerfile copies (not .venv, runs/, data/).
context=$(mktemp -d "$CACHE/context.XXXXXX")
trap 'rm -rf "$context"' EXIT
cp Dockerfile "$context/"
for src in $(awk 'toupper($1) == "COPY" { for (i = 2; i < NF; i++) print $i }' Dockerfile); do
  cp -a "$src" "$context/"
done
find "$context" -name __pycache__ -prune -exec rm -rf {} +

# 5. Build.
echo "building $IMAGE on $BASE_IMAGE (python3 $python_version)"
start=$(date +%s)
podman build --network host "${volumes[@]}" \
  --build-arg BASE="$BASE_IMAGE" --build-arg PYTHON_APT_VERSION="$python_version" \
  --build-arg PIP_CONFIG_FILE=/mnt/inq-build/pip.conf \
  --tag "$IMAGE" "$context" >>"$LOG" 2>&1 || fail "podman build: $(last_line "$LOG") (log: $LOG)"
build_s=$(seconds "$start")
echo "build time: ${build_s} s"
podman image prune -f >>"$LOG" 2>&1 || true  # earlier builds' dangling images

# 6. Run the quickstart as the image's user, runs/ on a host folder it owns.
runs=$CACHE/last-runs
rm -rf "$runs" && mkdir -p "$runs" && chown "$USER_ID:$USER_ID" "$runs"
start=$(date +%s)
podman run --rm --network none --volume "$runs:/app/runs" "$IMAGE" train quickstart "$@" >>"$LOG" 2>&1 \
  || fail "inq train quickstart in the container: $(last_line "$LOG") (log: $LOG)"
run_s=$(seconds "$start")
echo "run time: ${run_s} s (podman run ... $IMAGE train quickstart $*)"

# 7. Check the run folder on the host.
mapfile -t found < <(find "$runs/quickstart" -mindepth 1 -maxdepth 1 -type d)
[ ${#found[@]} -eq 1 ] || fail "expected one run folder under $runs/quickstart, found ${#found[@]}"
run_dir=${found[0]}
echo "run folder on the host: $run_dir"
find "$runs" -mindepth 1 -printf '%M %U:%G %9s %P\n' | sort -k4
strangers=$(find "$runs" -mindepth 1 \( ! -uid "$USER_ID" -o ! -gid "$USER_ID" \) -printf '%P ' )
[ -z "$strangers" ] || fail "not owned by the container user $USER_ID:$USER_ID on the host: $strangers"
"$PY" - "$run_dir" <<'EOF' || fail "the run folder does not check out"
import json
import sys
from pathlib import Path

import torch

run = Path(sys.argv[1])
ckpts = sorted(run.glob("*.ckpt"))
assert ckpts, f"{run}: no checkpoints"
for ckpt in ckpts:
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert isinstance(state, dict) and state.get("state_dict"), f"{ckpt.name}: no state_dict"
summary = json.loads((run / "summary.json").read_text())
assert summary["recipe"] == "quickstart", summary.get("recipe")
final = summary["final_metrics"]
print(f"checked: {', '.join(c.name for c in ckpts)} load with weights_only=True; summary.json: "
      f"recipe quickstart, final test/acc {final['test/acc']:.4f}, bits {summary['inq']['bits']}")
EOF
echo "container check passed (build ${build_s} s, run ${run_s} s)"
