#!/usr/bin/env python3
"""The shell steps of a CI example, as the CI system would hand them to a shell.

  ci-steps.py github FILE JOB CONTEXT_JSON
      prints a JSON list, one object per `run:` step of JOB:
      {"name", "id", "env": {...}, "run": "..."}; the workflow's, the job's
      and the step's `env` merged in that order; every ${{ expr }} in env
      values and in run replaced from CONTEXT_JSON (a flat object: "github.sha",
      "secrets.GITHUB_TOKEN", "runner.temp", "needs.build.outputs.image", ...).
      `uses:` steps are listed with "uses" and no "run" (the test does what
      they do, e.g. the checkout).
  ci-steps.py github-outputs FILE JOB CONTEXT_JSON
      prints the job's `outputs` as a JSON object, resolved the same way
      (steps.ID.outputs.NAME come from CONTEXT_JSON).
  ci-steps.py gitlab FILE JOB CONTEXT_JSON
      prints {"variables": {...}, "script": "..."}: the global and the job's
      `variables` with $VAR / ${VAR} expanded from CONTEXT_JSON (the
      predefined CI_* variables) and from each other, as GitLab does; the
      job's before_script and script lines joined in order.

An expression or variable the context does not hold is an error naming it
and the file, so a typo in an example fails its test.
"""
import json
import re
import sys

import yaml

EXPR = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def die(msg):
    sys.stderr.write("ci-steps: %s\n" % msg)
    sys.exit(2)


def github_sub(text, ctx, where):
    def one(m):
        key = m.group(1)
        if key.startswith("env."):
            return m.group(0)  # resolved by the shell's environment
        if key not in ctx:
            die("%s: ${{ %s }} is not in the test's context" % (where, key))
        return str(ctx[key])

    return EXPR.sub(one, str(text))


def github(path, job, ctx, outputs):
    doc = yaml.safe_load(open(path))
    jobs = doc.get("jobs") or {}
    if job not in jobs:
        die("%s: no job %r (jobs: %s)" % (path, job, ", ".join(jobs)))
    j = jobs[job]
    if outputs:
        return {k: github_sub(v, ctx, "%s: jobs.%s.outputs.%s" % (path, job, k))
                for k, v in (j.get("outputs") or {}).items()}
    steps = []
    for i, s in enumerate(j.get("steps") or []):
        where = "%s: jobs.%s.steps[%d]" % (path, job, i)
        env = {}
        for scope in (doc.get("env"), j.get("env"), s.get("env")):
            for k, v in (scope or {}).items():
                env[k] = github_sub(v, ctx, where + ".env." + k)
        step = {"name": s.get("name", ""), "id": s.get("id", ""), "env": env}
        if "run" in s:
            step["run"] = github_sub(s["run"], ctx, where + ".run")
        else:
            step["uses"] = s.get("uses", "")
        steps.append(step)
    return steps


def gitlab(path, job, ctx):
    doc = yaml.safe_load(open(path))
    if job not in doc:
        die("%s: no job %r" % (path, job))
    j = doc[job]
    raw = dict(doc.get("variables") or {})
    raw.update(j.get("variables") or {})
    known = dict(ctx)

    def expand(v, where, depth=0):
        def one(m):
            name = m.group(1) or m.group(2)
            if name in known:
                return str(known[name])
            if name in raw and depth < 10:
                return expand(raw[name], where, depth + 1)
            die("%s: $%s is not defined (predefined or in variables)" % (where, name))

        return VAR.sub(one, str(v))

    variables = {}
    for k, v in raw.items():
        variables[k] = expand(v, "%s: %s.variables.%s" % (path, job, k))
    lines = []
    for key in ("before_script", "script"):
        lines += [str(x) for x in (j.get(key) or doc.get("default", {}).get(key) or [])]
    if not lines:
        die("%s: job %r has no script" % (path, job))
    return {"variables": variables, "script": "\n".join(lines) + "\n"}


def main():
    if len(sys.argv) != 5:
        die("usage: ci-steps.py github|github-outputs|gitlab FILE JOB CONTEXT_JSON")
    kind, path, job, ctx = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    if kind == "github":
        r = github(path, job, ctx, False)
    elif kind == "github-outputs":
        r = github(path, job, ctx, True)
    elif kind == "gitlab":
        r = gitlab(path, job, ctx)
    else:
        die("unknown kind %r" % kind)
    json.dump(r, sys.stdout, indent=1)
    sys.stdout.write("\n")


main()
