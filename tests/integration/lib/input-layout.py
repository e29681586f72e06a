#!/usr/bin/python3
"""Fixture for ocib's input-integrity tests (34-integrity-inputs.bats):
writes a small OCI image layout from scratch, one gzip layer per LAYER
argument, and can then break it the ways a hostile or damaged base would be.

usage: input-layout.py [OPTIONS] DEST LAYER...

Each LAYER is a JSON list of entries {"name": N, "type": "file"|"dir"|
"symlink", "content": TEXT, "linkname": TARGET}, or "zeros:NAME:BYTES" (one
file of BYTES zero bytes, streamed: a gzip bomb for large BYTES), or
"zeros2:NAME:BYTES" (the same tar gzipped twice: a few KiB expanding to
BYTES, with a made-up diff_id), or "files:N" (N empty files f0..fN-1).

Options (K is a layer index from 0):
  --swap-blob K     layer K's blob file holds another valid gzip tar (the
                    manifest and config still name the original)
  --bad-diff-id K   the config lists a wrong diff_id for layer K
  --bad-size K      the manifest gives layer K's size plus one
  --bad-config-size the manifest gives the config's size plus one
  --docker-archive  DEST is a `docker save`-style tar (manifest.json, config,
                    layer files) instead of a layout

The image is tagged "1".  Prints one line per layer: "DIGEST DIFF_ID".
"""
import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import zlib


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for e in entries:
            ti = tarfile.TarInfo(e["name"])
            ti.mtime = 0
            kind = e.get("type", "file")
            data = None
            if kind == "file":
                data = e.get("content", "").encode()
                ti.size = len(data)
                ti.mode = 0o644
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["linkname"]
                ti.mode = 0o777
            else:
                sys.exit("unknown entry type %r" % kind)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def gzip_member(chunks):
    """One gzip member of the concatenated chunks (an iterator of bytes)."""
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [z.compress(c) for c in chunks]
    out.append(z.flush())
    return b"".join(out)


def zeros_layer(name, size):
    """(gzip blob, diff_id) of a tar holding one file of size zero bytes,
    without ever holding the tar in memory."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    header = ti.tobuf(format=tarfile.PAX_FORMAT)
    pad = (512 - size % 512) % 512
    trailer = b"\0" * (pad + 1024)
    h = hashlib.sha256(header)
    mib = b"\0" * (1 << 20)
    left = size

    def chunks():
        nonlocal left
        yield header
        while left > 0:
            n = min(left, len(mib))
            h.update(mib[:n])
            left -= n
            yield mib[:n]
        h.update(trailer)
        yield trailer

    blob = gzip_member(chunks())
    return blob, "sha256:" + h.hexdigest()


def zeros2_layer(name, size):
    """A tar of one zero file of size bytes, gzipped twice.  The inner
    stream is concatenated gzip members (header, 1 GiB of zeros as often as
    needed, the rest), so no step handles more than 1 GiB."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = 0
    ti.mode = 0o644
    header = ti.tobuf(format=tarfile.PAX_FORMAT)
    pad = (512 - size % 512) % 512
    gib = 1 << 30
    mib = b"\0" * (1 << 20)
    zero_gib = gzip_member(mib for _ in range(1024))
    inner = [gzip_member([header])]
    full, rest = divmod(size, gib)
    inner += [zero_gib] * full
    inner.append(gzip_member([b"\0" * rest, b"\0" * (pad + 1024)]))
    outer = gzip_member(iter(inner))
    # Hashing that many bytes would take longer than the test: the diff_id
    # is made up (a limit stops reading first).
    return outer, sha(b"diff_id of %d zeros" % size)


def empty_files_layer(n):
    """(gzip blob, diff_id) of a ustar archive of n empty files f0..fn-1,
    headers written by hand (tarfile is too slow for a million)."""
    h = hashlib.sha256()

    def header(name):
        b = bytearray(512)
        b[0:len(name)] = name
        b[100:108] = b"0000644\0"
        b[108:116] = b"0000000\0"
        b[116:124] = b"0000000\0"
        b[124:136] = b"00000000000\0"
        b[136:148] = b"00000000000\0"
        b[148:156] = b" " * 8
        b[156] = ord("0")
        b[257:265] = b"ustar\x0000"
        b[148:156] = b"%06o\0 " % sum(b)
        return bytes(b)

    def chunks():
        batch = []
        for i in range(n):
            batch.append(header(b"f%d" % i))
            if len(batch) == 4096:
                data = b"".join(batch)
                h.update(data)
                yield data
                batch = []
        batch.append(b"\0" * 1024)
        data = b"".join(batch)
        h.update(data)
        yield data

    blob = gzip_member(chunks())
    return blob, "sha256:" + h.hexdigest()


def layer_of(arg):
    if arg.startswith("zeros:"):
        _, name, size = arg.split(":")
        return zeros_layer(name, int(size))
    if arg.startswith("zeros2:"):
        _, name, size = arg.split(":")
        return zeros2_layer(name, int(size))
    if arg.startswith("files:"):
        return empty_files_layer(int(arg.split(":")[1]))
    else:
        raw = tar_of(json.loads(arg))
    return gzip.compress(raw, mtime=0), "sha256:" + hashlib.sha256(raw).hexdigest()


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--swap-blob", type=int, action="append", default=[])
    ap.add_argument("--bad-diff-id", type=int, action="append", default=[])
    ap.add_argument("--bad-size", type=int, action="append", default=[])
    ap.add_argument("--bad-config-size", action="store_true")
    ap.add_argument("--docker-archive", action="store_true")
    ap.add_argument("dest")
    ap.add_argument("layers", nargs="+")
    a = ap.parse_args()

    layers = [layer_of(x) for x in a.layers]
    # A swapped layer: both blobs stored uncompressed in gzip (level 0), so
    # they have the same size; the content differs in one byte.
    swapped = {}
    for k in a.swap_blob:
        raw = tar_of(json.loads(a.layers[k]))
        layers[k] = (gzip.compress(raw, compresslevel=0, mtime=0), sha(raw))
        i = raw.index(b"hello\n")
        swapped[k] = gzip.compress(raw[:i] + b"HELLO" + raw[i + 5:], compresslevel=0,
                                   mtime=0)
    config = {"architecture": os.environ.get("ARCH", "amd64"), "os": "linux",
              "config": {"Env": ["PATH=/usr/bin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": []}, "history": []}
    for k, (blob, diff_id) in enumerate(layers):
        if k in a.bad_diff_id:
            diff_id = sha(b"not the tar of layer %d" % k)
        config["rootfs"]["diff_ids"].append(diff_id)
        config["history"].append({"created": "1970-01-01T00:00:00Z",
                                  "created_by": "input-layout.py"})
    cbytes = json.dumps(config, sort_keys=True).encode()
    files = {}  # blob digest -> bytes as stored
    descs = []
    for k, (blob, _) in enumerate(layers):
        d = sha(blob)
        stored = blob
        if k in a.swap_blob:
            stored = swapped[k]
        files[d] = stored
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": d, "size": len(blob) + (1 if k in a.bad_size else 0)})
    manifest = {"schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": sha(cbytes),
                           "size": len(cbytes) + (1 if a.bad_config_size else 0)},
                "layers": descs}
    mbytes = json.dumps(manifest, sort_keys=True).encode()
    files[sha(cbytes)] = cbytes
    files[sha(mbytes)] = mbytes
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": sha(mbytes), "size": len(mbytes),
                            "annotations": {"org.opencontainers.image.ref.name": "1"}}]}
    if a.docker_archive:
        with tarfile.open(a.dest, "w") as t:
            def add(name, data):
                ti = tarfile.TarInfo(name)
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
            names = []
            for k, d in enumerate(x["digest"] for x in descs):
                names.append("blobs/sha256/" + d.split(":")[1])
                add(names[-1], files[d])
            add("blobs/sha256/" + sha(cbytes).split(":")[1], cbytes)
            add("manifest.json", json.dumps([{
                "Config": "blobs/sha256/" + sha(cbytes).split(":")[1],
                "RepoTags": ["input/base:1"], "Layers": names}]).encode())
    else:
        os.makedirs(os.path.join(a.dest, "blobs", "sha256"))
        for d, data in files.items():
            with open(os.path.join(a.dest, "blobs", "sha256", d.split(":")[1]), "wb") as f:
                f.write(data)
        with open(os.path.join(a.dest, "oci-layout"), "w") as f:
            f.write('{"imageLayoutVersion":"1.0.0"}')
        with open(os.path.join(a.dest, "index.json"), "w") as f:
            json.dump(index, f)
    for blob, diff_id in layers:
        print(sha(blob), diff_id)


if __name__ == "__main__":
    main()
