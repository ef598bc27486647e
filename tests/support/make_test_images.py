#!/usr/bin/env python3
"""Builds berth's OCI test images from the host's busybox-static, deterministically.

There is no internet on the test machines, so every image the image-store tests pull,
import or unpack is made here, from /bin/busybox and generated data. Each image is an
OCI image layout (oci-layout, index.json, blobs/sha256/...) in its own directory under
--out, and everything is fixed (mtimes, entry order, uid/gid/uname/gname, gzip header
mtime, JSON key order), so the same busybox binary gives the same digests on every run.

    make_test_images.py --busybox /bin/busybox --out DIR [--bench-mb N]
                        [--only NAME,NAME] [--docker-archive NAME]... [--oci-archive NAME]...

Images (tags through the org.opencontainers.image.ref.name annotation in index.json):
  busybox    one gzip layer: busybox, applet links, /etc/passwd, /etc/group, /tmp, /root
  multitag   the busybox manifest under the tags 1.0, 1.1 and latest
  users      busybox + a layer adding user `app` (1000:1000, group `extra` 2000) and a
             config using User, WorkingDir, Env, Entrypoint, Cmd, ExposedPorts, Volumes,
             StopSignal and Labels
  layers     busybox + a zstd layer (hard link, symlink, setuid, xattr, owned file) + an
             uncompressed layer (whiteout, opaque directory, changed file)
  multiarch  an image index: linux/<host> (the busybox manifest), the two others of
             linux/amd64, linux/arm64, linux/arm/v7
  armonly    an image index with linux/arm64 only (no match on an amd64 host)
  big        with --bench-mb N: N MiB of generated files over 5 gzip layers

DIR/images.json describes what was written (only the images of this run):

  format: 1, generator, busybox: {path, sha256}, host_platform: {os, architecture}
  images: {NAME: {
    layout          directory of the OCI layout, relative to DIR
    tags            the ref names in its index.json
    index_digest    digest/size of the image index blob the tag points at (multiarch,
    index_size      armonly), else null
    manifests       [{platform, digest, size, config_digest, layers: [digest]}], every
                    manifest of the image (one per platform)
    platform        the host platform's entry of manifests, which the fields below
    manifest_digest describe; all null / empty when the image has none (armonly)
    manifest_size, config_digest, config_size
    layers          [{digest, media_type, size, diff_id, uncompressed_size}]
    diff_ids        the config's rootfs.diff_ids
    config          the config's "config" object (Env, Cmd, User, ...)
    layer_bytes     {compressed, uncompressed}: sums over the layers
    final_view      (not for big) the filesystem the layers give, whiteouts applied:
                    paths: {path: {type: dir|file|symlink, mode: "0755" (not symlinks),
                            uid, gid, size, sha256, content (short text files),
                            target (symlinks), xattrs}}  -- every path, nothing else
                    absent: paths some layer has that must not exist in the end
                            (whited out, hidden by an opaque directory, .wh. entries)
                    hardlinks: [[path, path...]] groups that must share an inode
    file_count      (big only) regular files in its layers; bench_mb: its --bench-mb
    docker_archive  "NAME.docker.tar" / "NAME.oci.tar" when asked for
    oci_archive
  }}

Only the Python standard library is used, plus the `zstd` CLI for the zstd layer and
`skopeo` / GNU tar for --docker-archive / --oci-archive.
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tarfile
import tempfile

MTIME = 1704067200  # 2024-01-01T00:00:00Z, every tar entry
CREATED = "2024-01-01T00:00:00Z"
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
REF_NAME = "org.opencontainers.image.ref.name"

MT_INDEX = "application/vnd.oci.image.index.v1+json"
MT_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_TAR = "application/vnd.oci.image.layer.v1.tar"
MT_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"

APPLETS = [
    "[", "ash", "awk", "basename", "cat", "chmod", "chown", "cp", "cut", "date", "dd", "df",
    "dirname", "du", "echo", "env", "false", "find", "grep", "head", "hostname", "id", "kill",
    "ln", "ls", "md5sum", "mkdir", "mount", "mv", "nproc", "printf", "ps", "pwd", "readlink",
    "realpath", "rm", "rmdir", "sed", "seq", "sh", "sha256sum", "sleep", "sort", "stat", "sync",
    "tail", "tee", "test", "touch", "tr", "true", "umount", "uname", "uniq", "wc", "whoami",
    "xargs", "yes",
]

ALL_IMAGES = ["busybox", "multitag", "users", "layers", "multiarch", "armonly", "big"]


def die(msg):
    print("make_test_images: " + msg, file=sys.stderr)
    sys.exit(1)


def host_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(m, m)


def canonical_json(obj):
    # Insertion-ordered keys, no whitespace: the same bytes every run.
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


# ---------------------------------------------------------------------------
# Layer entries and tar writing.

class Entry:
    """One tar entry. kind: dir, file, symlink, hardlink."""

    def __init__(self, path, kind, mode=None, uid=0, gid=0, data=b"", target=None, xattrs=None):
        self.path = path.strip("/")
        self.kind = kind
        self.mode = mode if mode is not None else {"dir": 0o755, "file": 0o644}.get(kind, 0o777)
        self.uid, self.gid = uid, gid
        self.data = data  # bytes, or (size, producer) where producer(write) streams it
        self.target = target
        self.xattrs = xattrs or {}

    def size(self):
        return len(self.data) if isinstance(self.data, (bytes, bytearray)) else self.data[0]


def sort_key(entry):
    return entry.path.split("/")


def dirs(*paths, mode=0o755, uid=0, gid=0):
    return [Entry(p, "dir", mode, uid, gid) for p in paths]


class _Producer:
    """A file object for tarfile.addfile that reads from a streaming producer."""

    def __init__(self, size, producer):
        self._chunks = producer()
        self._buf = b""
        self._pos = 0

    def read(self, n=-1):
        # tarfile treats a short read as a truncated file: fill n across chunks.
        parts = []
        while n < 0 or n > 0:
            if self._pos >= len(self._buf):
                self._buf, self._pos = next(self._chunks, b""), 0
                if not self._buf:
                    break
            take = len(self._buf) - self._pos if n < 0 else min(n, len(self._buf) - self._pos)
            parts.append(self._buf[self._pos:self._pos + take])
            self._pos += take
            if n > 0:
                n -= take
        return b"".join(parts)


def write_tar(entries, out):
    """Writes entries (sorted, parents first) as a PAX tar to the file object out."""
    entries = sorted(entries, key=sort_key)
    seen = set()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for e in entries:
            if e.path in seen:
                raise ValueError("duplicate tar entry " + e.path)
            seen.add(e.path)
            ti = tarfile.TarInfo(e.path)
            ti.mtime = MTIME
            ti.uid, ti.gid = e.uid, e.gid
            ti.uname = ti.gname = ""
            ti.mode = e.mode
            if e.xattrs:
                ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in sorted(e.xattrs.items())}
            if e.kind == "dir":
                ti.type = tarfile.DIRTYPE
                tar.addfile(ti)
            elif e.kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e.target
                tar.addfile(ti)
            elif e.kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e.target
                tar.addfile(ti)
            elif e.kind == "file":
                ti.type = tarfile.REGTYPE
                ti.size = e.size()
                if isinstance(e.data, (bytes, bytearray)):
                    tar.addfile(ti, io.BytesIO(e.data))
                else:
                    tar.addfile(ti, _Producer(*e.data))
            else:
                raise ValueError("unknown entry kind " + e.kind)


class _HashWriter:
    """Counts and hashes what passes through, then forwards it (or drops it)."""

    def __init__(self, sink=None):
        self.sha = hashlib.sha256()
        self.size = 0
        self.sink = sink

    def write(self, b):
        self.sha.update(b)
        self.size += len(b)
        if self.sink is not None:
            self.sink.write(b)
        return len(b)

    def flush(self):
        pass

    def digest(self):
        return "sha256:" + self.sha.hexdigest()


# ---------------------------------------------------------------------------
# The layout: blobs and index.json.

class Layout:
    def __init__(self, root):
        self.root = root
        if os.path.exists(root):
            shutil.rmtree(root)
        os.makedirs(os.path.join(root, "blobs", "sha256"))
        self._tmp = os.path.join(root, "blobs", ".tmp")
        os.makedirs(self._tmp)

    def blob_path(self, digest):
        return os.path.join(self.root, "blobs", "sha256", digest.split(":", 1)[1])

    def add_bytes(self, data, media_type):
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not os.path.exists(path):
            with open(path, "wb") as f:
                f.write(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_json(self, obj, media_type):
        return self.add_bytes(canonical_json(obj), media_type)

    def add_layer(self, entries, compression):
        """Writes a layer blob. Returns (descriptor, diff_id, uncompressed size)."""
        fd, tmp = tempfile.mkstemp(dir=self._tmp)
        with os.fdopen(fd, "wb") as raw:
            compressed = _HashWriter(raw)
            if compression == "gzip":
                # mtime=0 and no file name: the gzip header is the same every run.
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6)
                plain = _HashWriter(gz)
                write_tar(entries, plain)
                gz.close()
                media_type = MT_GZIP
            elif compression == "none":
                plain = _HashWriter(compressed)
                write_tar(entries, plain)
                media_type = MT_TAR
            elif compression == "zstd":
                plain = _HashWriter(raw)
                write_tar(entries, plain)
                media_type = MT_ZSTD
            else:
                raise ValueError(compression)
        if compression == "zstd":
            out = tmp + ".zst"
            subprocess.run(["zstd", "-q", "-f", "-T1", "-3", "--no-progress", tmp, "-o", out], check=True)
            os.unlink(tmp)
            tmp = out
            compressed = _HashWriter()
            with open(tmp, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    compressed.write(chunk)
        digest = compressed.digest()
        path = self.blob_path(digest)
        if os.path.exists(path):
            os.unlink(tmp)
        else:
            os.rename(tmp, path)
        desc = {"mediaType": media_type, "digest": digest, "size": compressed.size}
        return desc, plain.digest(), plain.size

    def finish(self, index_manifests):
        shutil.rmtree(self._tmp)
        with open(os.path.join(self.root, "oci-layout"), "wb") as f:
            f.write(canonical_json({"imageLayoutVersion": "1.0.0"}))
        index = {"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": index_manifests}
        with open(os.path.join(self.root, "index.json"), "wb") as f:
            f.write(canonical_json(index))
        # Fixed permissions and times, so a tar of the layout is reproducible too.
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chmod(dirpath, 0o755)
            os.utime(dirpath, (MTIME, MTIME))
            for name in filenames:
                p = os.path.join(dirpath, name)
                os.chmod(p, 0o644)
                os.utime(p, (MTIME, MTIME))


# ---------------------------------------------------------------------------
# What the layers produce: a small model of applying OCI changesets in order.

def apply_layers(layer_entries):
    """Returns {path: attrs} of the filesystem the layers give, whiteouts applied."""
    fs = {}
    inode_of = {}
    next_inode = [1]

    def new_inode():
        next_inode[0] += 1
        return next_inode[0]

    def remove_tree(path):
        for p in [p for p in fs if p == path or p.startswith(path + "/")]:
            del fs[p]
            inode_of.pop(p, None)

    for entries in layer_entries:
        entries = sorted(entries, key=sort_key)
        names = {e.path for e in entries}
        # Opaque directories first: they hide what lower layers had in the directory.
        for e in entries:
            base = os.path.basename(e.path)
            if base == ".wh..wh..opq":
                d = os.path.dirname(e.path)
                for p in [p for p in fs if p.startswith(d + "/") and p not in names]:
                    del fs[p]
                    inode_of.pop(p, None)
        for e in entries:
            d, base = os.path.split(e.path)
            if base == ".wh..wh..opq":
                continue
            if base.startswith(".wh."):
                remove_tree(os.path.join(d, base[4:]) if d else base[4:])
                continue
            old = fs.get(e.path)
            if old is not None and not (old["type"] == "dir" and e.kind == "dir"):
                remove_tree(e.path)
            if e.kind == "hardlink":
                target = dict(fs[e.target])
                fs[e.path] = target
                inode_of[e.path] = inode_of[e.target]
                continue
            attrs = {"type": e.kind, "mode": "%04o" % e.mode, "uid": e.uid, "gid": e.gid}
            if e.kind == "symlink":
                attrs["target"] = e.target
                del attrs["mode"]
            if e.kind == "file":
                if isinstance(e.data, (bytes, bytearray)):
                    attrs["size"] = len(e.data)
                    attrs["sha256"] = hashlib.sha256(e.data).hexdigest()
                    if len(e.data) <= 64 and all(32 <= c < 127 or c == 10 for c in e.data):
                        attrs["content"] = e.data.decode()
                else:
                    attrs["size"] = e.size()
            if e.xattrs:
                attrs["xattrs"] = dict(sorted(e.xattrs.items()))
            fs[e.path] = attrs
            inode_of[e.path] = new_inode()
    groups = {}
    for p, ino in inode_of.items():
        groups.setdefault(ino, []).append(p)
    hardlinks = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    return {p: fs[p] for p in sorted(fs)}, hardlinks


# ---------------------------------------------------------------------------
# Image content.

def busybox_entries(busybox, applets):
    with open(busybox, "rb") as f:
        binary = f.read()
    entries = dirs("bin", "dev", "etc", "home", "proc", "sys", "usr", "usr/bin", "usr/sbin")
    entries += [Entry("root", "dir", 0o700), Entry("tmp", "dir", 0o1777)]
    entries.append(Entry("bin/busybox", "file", 0o755, data=binary))
    for a in applets:
        entries.append(Entry("bin/" + a, "symlink", target="busybox"))
    entries.append(Entry("usr/bin/env", "symlink", target="../../bin/busybox"))
    entries.append(Entry("etc/passwd", "file", data=(
        b"root:x:0:0:root:/root:/bin/sh\n"
        b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")))
    entries.append(Entry("etc/group", "file", data=b"root:x:0:\nnogroup:x:65534:\n"))
    return entries


def users_entries():
    return dirs("etc", "home") + [
        Entry("etc/passwd", "file", data=(
            b"root:x:0:0:root:/root:/bin/sh\n"
            b"app:x:1000:1000:app:/home/app:/bin/sh\n"
            b"nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")),
        Entry("etc/group", "file", data=(
            b"root:x:0:\napp:x:1000:\nextra:x:2000:app\nnogroup:x:65534:\n")),
        Entry("home/app", "dir", 0o755, 1000, 1000),
        Entry("home/app/.profile", "file", 0o644, 1000, 1000, data=b"export GREETING=hello\n"),
    ]


def layers_b_entries():
    # zstd layer: the kinds of entries an unpacker must get right.
    return dirs("data", "opt", "opt/keep") + [
        Entry("data/a", "file", data=b"a v1\n"),
        Entry("data/b", "file", data=b"b v1\n"),
        Entry("data/hard", "hardlink", target="data/b"),   # broken apart when layer c replaces b
        Entry("data/c", "file", data=b"c v1\n"),
        Entry("data/c-hard", "hardlink", target="data/c"),  # survives: same inode in the end
        Entry("data/link", "symlink", target="b"),
        Entry("data/suid", "file", 0o4755, data=b"#!/bin/sh\necho suid\n"),
        Entry("data/xattr", "file", data=b"has an xattr\n", xattrs={"user.berth": "test"}),
        Entry("data/owned", "file", 0o640, 1234, 5678, data=b"owned by 1234:5678\n"),
        Entry("opt/keep/old", "file", data=b"hidden by the opaque whiteout above\n"),
    ]


def layers_c_entries():
    # Uncompressed layer: whiteout, opaque directory, a changed file.
    return dirs("data", "opt/keep") + [
        Entry("data/.wh.a", "file", 0o644),
        Entry("data/b", "file", data=b"b v2 changed\n"),
        Entry("opt/keep/.wh..wh..opq", "file", 0o644),
        Entry("opt/keep/new", "file", data=b"new after opaque\n"),
    ]


WORDS = ("container image layer registry manifest digest blob index config snapshot "
         "overlay mount namespace cgroup process runtime berth harbour quay dock ship "
         "anchor cargo tide vessel pier crane route signal kernel socket network").split()


class BigData:
    """Seeded pools of text (compresses ~3x) and pseudo-random bytes (does not)."""

    POOL = 4 << 20

    def __init__(self, seed):
        rng = random.Random(seed)
        self.random = rng.randbytes(self.POOL)
        words = [w.encode() for w in WORDS]
        lines, size = [], 0
        while size < self.POOL:
            line = b" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + b"\n"
            lines.append(line)
            size += len(line)
        self.text = b"".join(lines)[: self.POOL]

    def producer(self, size, kind, seed):
        def gen():
            rng = random.Random(seed)
            left = size
            while left:
                pool = self.text if kind == "text" or (kind == "mixed" and rng.random() < 0.5) else self.random
                n = min(left, 1 << 20)
                off = rng.randrange(0, self.POOL - n + 1)
                yield pool[off:off + n]
                left -= n
        return (size, gen)


def big_layers(total_mib, nlayers=5):
    data = BigData(0xBE27)
    rng = random.Random(total_mib)
    layers = []
    total = total_mib << 20
    per_layer = total // nlayers
    for li in range(nlayers):
        budget = per_layer if li < nlayers - 1 else total - per_layer * (nlayers - 1)
        top = "big/l%d" % li
        entries = dirs("big", top)
        # A few large files take ~40% of the layer.
        large = [budget // 5, budget // 8, budget // 12]
        for i, size in enumerate(large):
            kind = ("random", "text", "mixed")[i]
            entries.append(Entry("%s/large-%d.%s" % (top, i, kind), "file",
                                 data=data.producer(size, kind, (li << 16) + i)))
        left = budget - sum(large)
        n = 0
        while left > 0:
            sub = "%s/d%03d" % (top, n // 200)
            if n % 200 == 0:
                entries.append(Entry(sub, "dir"))
            size = min(left, int(rng.expovariate(1 / 12000)) + 64)
            if rng.random() < 0.03:
                size = min(left, rng.randint(100_000, 1_000_000))
            kind = "text" if rng.random() < 0.5 else "random"
            mode = 0o755 if rng.random() < 0.05 else 0o644
            entries.append(Entry("%s/f%05d.%s" % (sub, n, "txt" if kind == "text" else "bin"), "file", mode,
                                 data=data.producer(size, kind, (li << 24) + (1 << 20) + n)))
            left -= size
            n += 1
        layers.append(entries)
    return layers


# ---------------------------------------------------------------------------
# Manifests and configs.

def make_config(arch, diff_ids, config, history, variant=None):
    cfg = {"created": CREATED, "architecture": arch}
    if variant:
        cfg["variant"] = variant
    cfg["os"] = "linux"
    cfg["config"] = config
    cfg["rootfs"] = {"type": "layers", "diff_ids": diff_ids}
    cfg["history"] = [{"created": CREATED, "created_by": h} for h in history]
    return cfg


def make_manifest(layout, config_obj, layer_descs, annotations=None):
    config_desc = layout.add_json(config_obj, MT_CONFIG)
    manifest = {"schemaVersion": 2, "mediaType": MT_MANIFEST, "config": config_desc, "layers": layer_descs}
    if annotations:
        manifest["annotations"] = annotations
    return layout.add_json(manifest, MT_MANIFEST), config_desc


def platform_of(arch, variant=None):
    p = {"architecture": arch, "os": "linux"}
    if variant:
        p["variant"] = variant
    return p


def tagged(desc, tag, plat=None):
    d = dict(desc)
    if plat:
        d["platform"] = plat
    d["annotations"] = {REF_NAME: tag}
    return d


class Builder:
    def __init__(self, args):
        self.out = os.path.abspath(args.out)
        self.busybox = args.busybox
        self.arch = host_arch()
        with open(args.busybox, "rb") as f:
            self.busybox_sha = hashlib.sha256(f.read()).hexdigest()
        listed = subprocess.run([args.busybox, "--list"], capture_output=True, text=True)
        have = set(listed.stdout.split()) if listed.returncode == 0 else set(APPLETS)
        self.applets = [a for a in APPLETS if a in have]
        self.base_config = {"Env": [PATH_ENV], "Cmd": ["sh"]}
        self.images = {}

    # Each builder returns images.json's entry for the image.
    def _layout(self, name):
        return Layout(os.path.join(self.out, name))

    def _base_layer(self, layout):
        entries = busybox_entries(self.busybox, self.applets)
        desc, diff_id, usize = layout.add_layer(entries, "gzip")
        return entries, (desc, diff_id, usize)

    def _single(self, name, layers, config, history, tags):
        """An image of one manifest: layers is [(entries, compression)]."""
        layout = self._layout(name)
        built = []
        for entries, compression in layers:
            built.append((entries,) + layout.add_layer(entries, compression))
        diff_ids = [b[2] for b in built]
        cfg = make_config(self.arch, diff_ids, config, history)
        mdesc, cdesc = make_manifest(layout, cfg, [b[1] for b in built])
        plat = platform_of(self.arch)
        layout.finish([tagged(mdesc, t, plat) for t in tags])
        return self.describe(name, tags, None, [(plat, mdesc, cdesc, built, cfg)])

    def build_busybox(self, name="busybox", tags=("latest",)):
        entries = busybox_entries(self.busybox, self.applets)
        return self._single(name, [(entries, "gzip")], self.base_config,
                            ["busybox-static with applet links"], list(tags))

    def build_multitag(self):
        return self.build_busybox("multitag", ("1.0", "1.1", "latest"))

    def build_users(self):
        config = {
            "User": "app",
            "ExposedPorts": {"8080/tcp": {}},
            "Env": [PATH_ENV, "FOO=bar"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Cmd": ["id"],
            "Volumes": {"/data": {}},
            "WorkingDir": "/home/app",
            "Labels": {"org.berth.test": "users", "org.opencontainers.image.title": "berth users test image"},
            "StopSignal": "SIGQUIT",
        }
        return self._single("users", [(busybox_entries(self.busybox, self.applets), "gzip"),
                                      (users_entries(), "gzip")],
                            config, ["busybox-static with applet links", "user app 1000:1000, group extra 2000"],
                            ["latest"])

    def build_layers(self):
        return self._single("layers", [(busybox_entries(self.busybox, self.applets), "gzip"),
                                       (layers_b_entries(), "zstd"),
                                       (layers_c_entries(), "none")],
                            self.base_config,
                            ["busybox-static with applet links",
                             "zstd: hard link, symlink, setuid, xattr, owned file",
                             "tar: whiteout data/a, opaque opt/keep, changed data/b"],
                            ["latest"])

    def _index_image(self, name, platforms):
        """An image index (a blob) tagged latest in index.json, one manifest per platform."""
        layout = self._layout(name)
        entries = busybox_entries(self.busybox, self.applets)
        desc, diff_id, usize = layout.add_layer(entries, "gzip")
        built = [(entries, desc, diff_id, usize)]
        per_platform = []
        for arch, variant in platforms:
            cfg = make_config(arch, [diff_id], self.base_config, ["busybox-static with applet links"], variant)
            mdesc, cdesc = make_manifest(layout, cfg, [desc])
            plat = platform_of(arch, variant)
            per_platform.append((plat, mdesc, cdesc, built, cfg))
        index = {"schemaVersion": 2, "mediaType": MT_INDEX,
                 "manifests": [dict(m, platform=p) for p, m, _, _, _ in per_platform]}
        idesc = layout.add_json(index, MT_INDEX)
        layout.finish([tagged(idesc, "latest")])
        return self.describe(name, ["latest"], idesc, per_platform)

    def build_multiarch(self):
        # The host's platform first; its manifest is byte for byte the busybox image's.
        wanted = [(self.arch, None)] + [p for p in [("amd64", None), ("arm64", None), ("arm", "v7")]
                                        if p[0] != self.arch]
        return self._index_image("multiarch", wanted[:3])

    def build_armonly(self):
        return self._index_image("armonly", [("arm64", None)])

    def build_big(self, mib):
        layout = self._layout("big")
        built = []
        for entries in big_layers(mib):
            built.append((entries,) + layout.add_layer(entries, "gzip"))
        diff_ids = [b[2] for b in built]
        cfg = make_config(self.arch, diff_ids, self.base_config,
                          ["generated bench layer %d" % i for i in range(len(built))])
        mdesc, cdesc = make_manifest(layout, cfg, [b[1] for b in built])
        plat = platform_of(self.arch)
        layout.finish([tagged(mdesc, "latest", plat)])
        return self.describe("big", ["latest"], None, [(plat, mdesc, cdesc, built, cfg)], view=False)

    def describe(self, name, tags, index_desc, per_platform, view=True):
        """images.json entry. manifest_digest/config_digest/layers/diff_ids/final_view are
        those of the host platform's manifest (null when the image has none)."""
        host = [pp for pp in per_platform if pp[0]["architecture"] == self.arch and "variant" not in pp[0]]
        manifests = []
        for plat, mdesc, cdesc, built, cfg in per_platform:
            manifests.append({"platform": plat, "digest": mdesc["digest"], "size": mdesc["size"],
                              "config_digest": cdesc["digest"],
                              "layers": [b[1]["digest"] for b in built]})
        entry = {
            "layout": name,
            "tags": tags,
            "index_digest": index_desc["digest"] if index_desc else None,
            "index_size": index_desc["size"] if index_desc else None,
            "manifests": manifests,
            "manifest_digest": None, "manifest_size": None, "config_digest": None, "config_size": None,
            "layers": [], "diff_ids": [], "config": None,
        }
        if host:
            plat, mdesc, cdesc, built, cfg = host[0]
            entry.update({
                "platform": plat,
                "manifest_digest": mdesc["digest"], "manifest_size": mdesc["size"],
                "config_digest": cdesc["digest"], "config_size": cdesc["size"],
                "layers": [{"digest": d["digest"], "media_type": d["mediaType"], "size": d["size"],
                            "diff_id": diff_id, "uncompressed_size": usize}
                           for _, d, diff_id, usize in built],
                "diff_ids": [b[2] for b in built],
                "config": cfg["config"],
                "layer_bytes": {"compressed": sum(b[1]["size"] for b in built),
                                "uncompressed": sum(b[3] for b in built)},
            })
            if view:
                paths, hardlinks = apply_layers([b[0] for b in built])
                gone = sorted({e.path for b in built for e in b[0]} - set(paths))
                entry["final_view"] = {"paths": paths, "absent": gone, "hardlinks": hardlinks}
            else:
                entry["file_count"] = sum(1 for b in built for e in b[0] if e.kind == "file")
        return entry


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        die("%s failed (exit %d): %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--busybox", default="/bin/busybox", help="a static busybox (default /bin/busybox)")
    ap.add_argument("--out", required=True, help="directory for the layouts and images.json")
    ap.add_argument("--bench-mb", type=int, default=0, help="also build `big` with N MiB of files")
    ap.add_argument("--only", default="", help="comma-separated image names to build (default: all)")
    ap.add_argument("--docker-archive", action="append", default=[], metavar="NAME",
                    help="also write DIR/NAME.docker.tar (skopeo copy to docker-archive)")
    ap.add_argument("--oci-archive", action="append", default=[], metavar="NAME",
                    help="also write DIR/NAME.oci.tar (a tar of the layout)")
    args = ap.parse_args()

    if not os.path.isfile(args.busybox):
        die("no busybox at %s (install busybox-static)" % args.busybox)
    if args.bench_mb < 0:
        die("--bench-mb must be >= 0")
    names = [n for n in args.only.split(",") if n] or [n for n in ALL_IMAGES if n != "big" or args.bench_mb]
    for n in names + args.docker_archive + args.oci_archive:
        if n not in ALL_IMAGES:
            die("unknown image %r (known: %s)" % (n, ", ".join(ALL_IMAGES)))
    if "big" in names and not args.bench_mb:
        die("big needs --bench-mb N")
    for n in args.docker_archive + args.oci_archive:
        if n not in names:
            die("%s is archived but not built (see --only)" % n)
    if "layers" in names and not shutil.which("zstd"):
        die("the zstd CLI is needed for the layers image")

    os.makedirs(args.out, exist_ok=True)
    b = Builder(args)
    result = {
        "format": 1,
        "generator": "tests/support/make_test_images.py",
        "busybox": {"path": os.path.abspath(args.busybox), "sha256": b.busybox_sha},
        "host_platform": platform_of(b.arch),
        "images": {},
    }
    for n in names:
        if n == "big":
            entry = b.build_big(args.bench_mb)
            entry["bench_mb"] = args.bench_mb
        else:
            entry = getattr(b, "build_" + n)()
        result["images"][n] = entry

    for n in args.docker_archive:
        dest = os.path.join(b.out, n + ".docker.tar")
        if os.path.exists(dest):
            os.unlink(dest)
        src = os.path.join(b.out, n)
        with tempfile.TemporaryDirectory(dir=b.out) as tmp:
            if any(l["media_type"] == MT_ZSTD for l in result["images"][n]["layers"]):
                # skopeo will not put a zstd layer in a docker archive (whose layers are
                # plain tars anyway): recompress to gzip in a scratch layout first.
                run(["skopeo", "copy", "--quiet", "--dest-compress", "--dest-compress-format", "gzip",
                     "oci:%s:latest" % src, "oci:%s:latest" % os.path.join(tmp, "gzip")])
                src = os.path.join(tmp, "gzip")
            run(["skopeo", "copy", "--quiet", "oci:%s:latest" % src, "docker-archive:%s:%s:latest" % (dest, n)])
        result["images"][n]["docker_archive"] = n + ".docker.tar"
    for n in args.oci_archive:
        dest = os.path.join(b.out, n + ".oci.tar")
        run(["tar", "-C", os.path.join(b.out, n), "--sort=name", "--mtime=@%d" % MTIME, "--owner=0",
             "--group=0", "--numeric-owner", "--format=posix",
             "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime", "-cf", dest, "."])
        result["images"][n]["oci_archive"] = n + ".oci.tar"

    with open(os.path.join(b.out, "images.json"), "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
