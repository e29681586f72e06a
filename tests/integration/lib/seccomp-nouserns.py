#!/usr/bin/python3
"""seccomp-nouserns SRC DEST -- writes a seccomp profile that denies new
namespaces the way Docker's and containerd's default profile (and so
Kubernetes' RuntimeDefault) does: unshare, mount, umount2, pivot_root and
setns only with CAP_SYS_ADMIN, clone only without CLONE_NEW* flags, clone3
answered ENOSYS so that the C library falls back to clone. SRC is podman's
profile (/usr/share/containers/seccomp.json), which allows them all."""
import json
import sys

CLONE_NEW = 0x7E020000  # NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET

src, dest = sys.argv[1], sys.argv[2]
with open(src) as f:
    profile = json.load(f)
gated = {"unshare", "mount", "umount2", "pivot_root", "clone", "clone3", "setns"}
for rule in profile["syscalls"]:
    if rule.get("action") == "SCMP_ACT_ALLOW" and not rule.get("includes") and not rule.get("args"):
        rule["names"] = [n for n in rule["names"] if n not in gated]
profile["syscalls"] += [
    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
     "args": [{"index": 0, "value": CLONE_NEW, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
     "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
     "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
    {"names": ["unshare", "mount", "umount2", "pivot_root", "setns", "clone", "clone3"],
     "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
]
with open(dest, "w") as f:
    json.dump(profile, f, indent=1)
