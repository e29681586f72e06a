#!/usr/bin/python3
"""Fixture for ocib's integration tests: copies an OCI image layout and adds
one hand-made layer on top of its image, with entries written exactly as
given (no name sanitising), so tests can feed ocib hostile base images.

usage: craft-layout.py SRC_LAYOUT DEST_LAYOUT TAG ENTRIES_JSON

SRC_LAYOUT must hold exactly one image manifest.  ENTRIES_JSON is a list of
{"name": NAME, "type": "file"|"dir"|"symlink"|"hardlink",
 "content": TEXT (file), "linkname": TARGET (symlink, hardlink),
 "mode": INT (optional)}.
DEST_LAYOUT gets the source's blobs, the new gzip layer, a config with the
layer's diff_id appended, and a manifest tagged TAG (org.opencontainers.
image.ref.name).  Prints "LAYER_DIGEST DIFF_ID".
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile


def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    p = os.path.join(layout, "blobs", "sha256", d)
    with open(p, "wb") as f:
        f.write(data)
    return "sha256:" + d


def read_blob(layout, digest):
    with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
        return f.read()


def make_tar(entries):
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
                ti.mode = e.get("mode", 0o644)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
                ti.mode = e.get("mode", 0o755)
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e["linkname"]
                ti.mode = 0o777
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e["linkname"]
                ti.mode = e.get("mode", 0o644)
            else:
                sys.exit("unknown entry type %r" % kind)
            # tarfile would rewrite nothing here, but be explicit: the name
            # and link name go into the archive byte for byte.
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def main():
    src, dest, tag, entries = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    with open(os.path.join(src, "index.json")) as f:
        index = json.load(f)
    digests = sorted({m["digest"] for m in index["manifests"]})
    if len(digests) != 1:
        sys.exit("%s holds %d manifests, expected 1" % (src, len(digests)))
    shutil.copytree(src, dest)
    manifest = json.loads(read_blob(dest, digests[0]))
    config = json.loads(read_blob(dest, manifest["config"]["digest"]))

    raw = make_tar(entries)
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    gz = gzip.compress(raw, mtime=0)
    layer = put_blob(dest, gz)
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append({"created": "1970-01-01T00:00:00Z",
                                             "created_by": "craft-layout.py"})
    cbytes = json.dumps(config, sort_keys=True).encode()
    manifest["config"] = {"mediaType": "application/vnd.oci.image.config.v1+json",
                          "digest": put_blob(dest, cbytes), "size": len(cbytes)}
    manifest["layers"].append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                               "digest": layer, "size": len(gz)})
    manifest.pop("annotations", None)
    mbytes = json.dumps(manifest, sort_keys=True).encode()
    mdigest = put_blob(dest, mbytes)
    index = {"schemaVersion": 2,
             "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": mdigest, "size": len(mbytes),
                            "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(dest, "index.json"), "w") as f:
        json.dump(index, f)
    print(layer, diff_id)


if __name__ == "__main__":
    main()
