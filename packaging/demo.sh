#!/bin/bash
# berth's main job on its embedded default, no registry and no control plane:
# berthd with its own local network (packaging/cni/10-berth.conflist: bridge berth0,
# 10.89.0.0/16, portmap) and a busybox image built from the host's busybox-static,
# then one pod run through CRI by berthctl, as kubelet would run it.
#   packaging/demo.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "$1")
berthctl=$build/runtime/berthctl/berthctl
demo=$(mktemp -d /tmp/berth-demo.XXXXXX)
state=/run/berth-demo
socket=$state/berth.sock
berthd_pid=
cleanup() {
  if [[ -n $berthd_pid ]]; then kill -TERM "$berthd_pid" 2>/dev/null && wait "$berthd_pid" || true; fi
  rm -rf "$demo"
}
trap cleanup EXIT

mkdir -p "$demo/net.d"
cp packaging/cni/10-berth.conflist "$demo/net.d/"
: >"$demo/berthd.toml"
python3 tests/support/make_test_images.py --busybox /bin/busybox --out "$demo/images" --only busybox >/dev/null
"$berthctl" --root "$demo/root" import --name docker.io/library/busybox "$demo/images/busybox"

"$build/runtime/daemon/berthd" --config "$demo/berthd.toml" --root "$demo/root" --state "$state" \
  --socket "$socket" --cni-conf-dir "$demo/net.d" 2>"$demo/berthd.log" &
berthd_pid=$!
for _ in $(seq 100); do
  "$berthctl" --socket "$socket" version >/dev/null 2>&1 && break
  sleep 0.1
done
"$berthctl" --socket "$socket" version
"$berthctl" --socket "$socket" info
"$berthctl" --socket "$socket" run --rm --name demo --image busybox --log-root "$demo/logs" -- /bin/sh -c \
  'echo "hello from pod $(hostname), uid $(id -u), eth0 $(ip -4 -o addr show eth0 | awk "{print \$4}")";
   grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status'
echo "berthd log:"
sed 's/^/  /' "$demo/berthd.log"
