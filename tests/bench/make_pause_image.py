#!/usr/bin/env python3
"""Builds a pause image for containerd's sandbox_image, offline: an OCI image layout of
one gzip layer holding a static binary at /pause, entrypoint /pause [ARG...].

    make_pause_image.py --binary PATH --out DIR [--tag TAG] [ARG...]

berth_cri_bench uses it with berth-shim (static), whose `pause` command sleeps and reaps
like Kubernetes' pause: `make_pause_image.py --binary berth-shim --out DIR pause`.
The layout writer is make_test_images.py's (fixed mtimes and owners, canonical JSON).
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import make_test_images as mti  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="a static executable to run as /pause")
    ap.add_argument("--out", required=True, help="directory of the OCI layout to write")
    ap.add_argument("--tag", default="latest")
    ap.add_argument("args", nargs="*", help="arguments after /pause in the entrypoint")
    a = ap.parse_args()
    with open(a.binary, "rb") as f:
        binary = f.read()
    entries = mti.dirs("dev", "etc", "proc", "sys") + [mti.Entry("pause", "file", 0o755, data=binary)]
    entries.append(mti.Entry("etc/passwd", "file", data=b"root:x:0:0:root:/:/pause\n"))
    layout = mti.Layout(os.path.abspath(a.out))
    desc, diff_id, _ = layout.add_layer(entries, "gzip")
    arch = mti.host_arch()
    cfg = mti.make_config(arch, [diff_id], {"Env": [mti.PATH_ENV], "Entrypoint": ["/pause"] + a.args,
                                            "WorkingDir": "/"}, ["static pause binary"])
    mdesc, _ = mti.make_manifest(layout, cfg, [desc])
    layout.finish([mti.tagged(mdesc, a.tag, mti.platform_of(arch))])


if __name__ == "__main__":
    main()
