#!/usr/bin/python3
"""Checks, on an strace log of one build, that everything published into
the cache and into an OCI layout output reached the disk before its name did.

usage: cache-fsync-order.py TRACE CACHE_DIR OUT_DIR

TRACE is `strace -f -y -qq -s 4096 -e trace=fsync,fdatasync,rename,renameat,
renameat2` output.  For every rename into CACHE_DIR/blobs/sha256 and
CACHE_DIR/keys, and into OUT_DIR's temporary layout, the renamed file must
have been fsync'ed before the rename (by name: -y prints an fd's path) and
its directory after it; the layout itself must have its blob directory,
index.json and top directory synced before it is renamed to OUT_DIR, and
OUT_DIR's parent after.  Every blob now in the cache must have been
published that way.  Prints what is wrong and exits 1, else prints a
summary.
"""
import os
import re
import sys

trace, cache, out = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])

CALL = re.compile(r'^(\d+)\s+(fsync|fdatasync|rename|renameat|renameat2)\((.*)$')
FD = re.compile(r'^\d+<(.*)>')
STR = re.compile(r'"((?:[^"\\]|\\.)*)"')

events = []  # ("sync", path) | ("rename", src, dst)
with open(trace) as f:
    for line in f:
        m = CALL.match(line)
        if not m:
            continue
        name, args = m.group(2), m.group(3)
        if name in ("fsync", "fdatasync"):
            fd = FD.match(args)
            if fd and (line.rstrip().endswith("= 0") or "<unfinished" in line):
                events.append(("sync", fd.group(1)))
        else:
            if not (line.rstrip().endswith("= 0") or "<unfinished" in line):
                continue
            s = STR.findall(args)
            if len(s) >= 2:
                events.append(("rename", s[0], s[1]))

problems = []


def synced(path, lo, hi):
    return any(e[0] == "sync" and e[1] == path for e in events[lo:hi])


def check_publish(i, src, dst, what):
    if not synced(src, 0, i):
        problems.append("%s %s: no fsync of %s before its rename" % (what, dst, src))
    if not synced(os.path.dirname(dst), i + 1, len(events)):
        problems.append("%s %s: no fsync of %s after its rename" % (what, dst, os.path.dirname(dst)))


published = set()
layout_renames = 0
out_parent = os.path.dirname(out)
out_tmp_prefix = os.path.join(out_parent, "." + os.path.basename(out) + ".tmp-")
for i, e in enumerate(events):
    if e[0] != "rename":
        continue
    src, dst = e[1], e[2]
    if os.path.dirname(dst) == os.path.join(cache, "blobs/sha256"):
        check_publish(i, src, dst, "cache blob")
        published.add(os.path.basename(dst))
    elif dst.startswith(os.path.join(cache, "keys") + "/"):
        check_publish(i, src, dst, "cache key entry")
    elif src.startswith(out_tmp_prefix) and "/" in src[len(out_tmp_prefix):]:
        tmp = src[: len(out_tmp_prefix) + src[len(out_tmp_prefix):].index("/")]
        if dst.startswith(tmp + "/blobs/sha256/"):
            if not synced(src, 0, i):
                problems.append("output blob %s: no fsync before its rename" % dst)
        elif dst == tmp + "/index.json":
            check_publish(i, src, dst, "output index.json")
    elif dst == out and src.startswith(out_tmp_prefix):
        layout_renames += 1
        for d in (src + "/blobs/sha256", src):
            if not synced(d, 0, i):
                problems.append("output layout: no fsync of %s before it became %s" % (d, out))
        if not synced(out_parent, i + 1, len(events)):
            problems.append("output layout: no fsync of %s after the rename" % out_parent)

blobs = set(os.listdir(os.path.join(cache, "blobs/sha256")))
for b in sorted(blobs - published):
    problems.append("cache blob %s was not published by a rename in the trace" % b)
if layout_renames != 1:
    problems.append("expected one rename of the layout into %s, saw %d" % (out, layout_renames))
if not blobs:
    problems.append("the cache holds no blobs")

if problems:
    print("\n".join(problems[:12] + (["... %d more" % (len(problems) - 12)] if len(problems) > 12 else [])))
    sys.exit(1)
print("%d cache blobs, each synced before its rename and its directory after; layout synced"
      % len(published))
