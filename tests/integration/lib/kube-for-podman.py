#!/usr/bin/python3
"""kube-for-podman.py OUTDIR REGISTRY IMAGE YAML... [--set SECRET/KEY=FILE]... [--pod NAME]

Rewrites Kubernetes YAML (examples/k8s/) into what Debian 12's podman 4.3
`kube play` runs, and writes OUTDIR/play.yaml:

- every "registry.example.com" in a string becomes REGISTRY (host:port), and
  every container's image becomes IMAGE (a name in podman's storage);
- a Job becomes a Pod of its template (podman 4.3 reads Pods and
  Deployments, not Jobs), named after the Job;
- a Secret is not a kind podman 4.3 reads (a secret volume of a Secret
  document crashes it): each secret volume becomes a hostPath directory
  OUTDIR/secret-NAME holding the Secret's keys as files (its items applied),
  with --set replacing a key's value by FILE's content;
- with --pod NAME, the only workload kept is the Job or Pod named NAME;
- ConfigMaps and everything else stay as they are.
"""
import base64
import os
import sys

import yaml

EXAMPLE_REGISTRY = "registry.example.com"


def subst(node, registry):
    if isinstance(node, str):
        return node.replace(EXAMPLE_REGISTRY, registry)
    if isinstance(node, list):
        return [subst(x, registry) for x in node]
    if isinstance(node, dict):
        return {k: subst(v, registry) for k, v in node.items()}
    return node


def secret_data(doc):
    data = {k: base64.b64decode(v) for k, v in (doc.get("data") or {}).items()}
    for k, v in (doc.get("stringData") or {}).items():
        data[k] = v.encode()
    return data


def main(argv):
    sets = {}
    only = None
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "--set":
            key, path = argv[i + 1].split("=", 1)
            with open(path, "rb") as f:
                sets[key] = f.read()
            i += 2
        elif argv[i] == "--pod":
            only = argv[i + 1]
            i += 2
        else:
            args.append(argv[i])
            i += 1
    outdir, registry, image = args[0], args[1], args[2]
    docs = []
    for path in args[3:]:
        with open(path) as f:
            docs += [d for d in yaml.safe_load_all(f) if d]
    docs = [subst(d, registry) for d in docs]
    secrets = {d["metadata"]["name"]: secret_data(d) for d in docs if d["kind"] == "Secret"}
    for name, data in secrets.items():
        for key in list(data):
            if f"{name}/{key}" in sets:
                data[key] = sets[f"{name}/{key}"]
    out = []
    for d in docs:
        if d["kind"] == "Secret":
            continue
        if only and d["kind"] in ("Job", "Pod") and d["metadata"]["name"] != only:
            continue
        if d["kind"] == "Job":
            spec = d["spec"]["template"]["spec"]
            d = {"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": d["metadata"]["name"]}, "spec": spec}
        if d["kind"] == "Pod":
            spec = d["spec"]
            for c in spec.get("initContainers", []) + spec.get("containers", []):
                c["image"] = image
            for v in spec.get("volumes", []):
                if "secret" not in v:
                    continue
                sec = v.pop("secret")
                data = secrets[sec["secretName"]]
                items = sec.get("items") or [{"key": k, "path": k} for k in data]
                sdir = os.path.join(outdir, "secret-" + sec["secretName"])
                os.makedirs(sdir, exist_ok=True)
                for it in items:
                    with open(os.path.join(sdir, it["path"]), "wb") as f:
                        f.write(data[it["key"]])
                    os.chmod(os.path.join(sdir, it["path"]), 0o644)
                v["hostPath"] = {"path": sdir, "type": "Directory"}
        out.append(d)
    with open(os.path.join(outdir, "play.yaml"), "w") as f:
        yaml.safe_dump_all(out, f, sort_keys=False)


if __name__ == "__main__":
    main(sys.argv[1:])
