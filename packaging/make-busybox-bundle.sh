#!/bin/sh
# Builds an OCI bundle at $1 from the host's busybox-static: a rootfs holding
# busybox and a link per applet, and config.json from `berth spec` (non-interactive).
# Usage: make-busybox-bundle.sh BUNDLE_DIR BERTH_BINARY [ARGS...]
set -eu
bundle=$1
berth=$2
shift 2
busybox=$(command -v busybox || echo /bin/busybox)
file "$busybox" 2>/dev/null | grep -q 'statically linked' || [ -x /bin/busybox ] || {
  echo "busybox-static is not installed (apt-get install busybox-static)" >&2; exit 1; }
rm -rf "$bundle"
mkdir -p "$bundle/rootfs/bin" "$bundle/rootfs/proc" "$bundle/rootfs/sys" "$bundle/rootfs/dev" \
  "$bundle/rootfs/etc" "$bundle/rootfs/tmp" "$bundle/rootfs/root"
cp "$busybox" "$bundle/rootfs/bin/busybox"
for applet in $("$bundle/rootfs/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -s busybox "$bundle/rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' > "$bundle/rootfs/etc/passwd"
echo 'root:x:0:' > "$bundle/rootfs/etc/group"
(cd "$bundle" && "$berth" spec)
if [ $# -gt 0 ]; then
  python3 - "$bundle/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = args
json.dump(spec, open(path, "w"), indent=1)
PY
fi
