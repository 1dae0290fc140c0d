#!/usr/bin/env python3
"""Runs ecspresso's own CI suite (kayac/ecspresso `tests/ci/`) with cortado in place of
ecspresso, against a cortado sandbox, and prints which command lines pass.

    python3 scripts/ecspresso-ci.py PATH/TO/ecspresso/tests/ci [--cortado BIN] [--only T,...]

PATH is a checkout of that folder, left unchanged: its Makefile, ecspresso.yml, envfiles,
Jsonnet definitions and overrides.json. The runner:

1. reads the Makefile (variables, `export`s, `$(shell ...)`, targets and their recipe lines,
   backslash continuations) and lists the command lines of the targets, in the order below
   (`--only` picks targets);
2. seeds a sandbox with what ecspresso's CI account holds for the suite: every SSM parameter
   and Secrets Manager secret the folder's files name (`{{ ssm ... }}`, `secretsmanager_arn`,
   `valueFrom`, with their ARNs' suffixes), and, with `--tfstate-bucket B`, the folder's
   terraform.tfstate at s3://B/terraform.tfstate (TFSTATE_BUCKET is then set);
3. starts `cortado sandbox serve --seed ... --prepare ecspresso.yml` in the folder (the config
   rendered against that sandbox) and puts a shim named `ecspresso` (running cortado) first on
   PATH, plus `uuidgen` when the machine has none;
4. registers one revision of the suite's task definition family before the first line, as
   an earlier run of the suite left it in ecspresso's CI account (its family keeps its
   history: `rollback` returns to the revision before the running one, and in a fresh
   account there would be none, since cortado's `deploy` reuses the revision `register`
   made instead of registering an identical one again);
5. runs each line with `sh -c` in the folder, as make would (its exported variables in the
   environment), one after another, and records its exit status: a line passes when it exits 0.

It prints one line per command (PASS/FAIL, target, exit status, the command, and the last line
cortado wrote on stderr when it failed), then `N of M lines pass`. Logs of every line go to
`--logs DIR` (default: a temporary folder, named at the end). Exit status: 0 when every line
passed, 1 otherwise, 2 when the suite could not be run at all.
"""

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time

# The targets, in the order the issue lists them (the service is created by `deploy`, used by
# the middle ones, scaled, and deleted last).
ORDER = [
    "verify", "register", "deploy", "status", "tasks", "run-task", "wait", "diff",
    "revisions", "render", "rollback", "refresh", "deploy-no-update-service", "scale",
    "down", "up", "exec", "delete",
]
ACCOUNT = "123456789012"  # the sandbox's account id
REGION = "ap-northeast-1"  # ecspresso.yml's region


def parse_makefile(text):
    """(variables, exported names, {target: [command lines]}) of a Makefile of the suite's
    kind. Variable values are kept unexpanded; recipe lines are joined across backslashes."""
    lines = text.split("\n")
    joined = []
    i = 0
    while i < len(lines):
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].lstrip("\t ")
        joined.append(line)
        i += 1
    variables, exported, targets, current = {}, set(), {}, None
    assign = re.compile(r"^(export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*(:=|\?=|=)\s*(.*)$")
    for line in joined:
        if line.startswith("\t"):
            if current is not None and line.strip():
                targets[current].append(line.strip())
            continue
        current = None
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        m = assign.match(stripped)
        if m:
            export, name, op, value = m.groups()
            if export:
                exported.add(name)
            if op == "?=" and (name in variables or name in os.environ):
                continue
            variables[name] = (op, value)
            continue
        if ":" in stripped and not stripped.startswith("."):
            name = stripped.split(":", 1)[0].strip()
            targets.setdefault(name, [])
            current = name
    return variables, exported, targets


def expand(text, variables, env, cache):
    """Expands `$(VAR)` (Makefile variables, else the environment) and `$(shell CMD)`."""
    def one(m):
        inner = m.group(1)
        if inner.startswith("shell "):
            cmd = expand(inner[6:], variables, env, cache)
            out = subprocess.run(["sh", "-c", cmd], env=env, capture_output=True, text=True)
            return out.stdout.strip().replace("\n", " ")
        return value_of(inner, variables, env, cache)
    prev = None
    while prev != text:
        prev = text
        text = re.sub(r"\$\(([^()]*)\)", one, text)
    return text.replace("$$", "$")


def value_of(name, variables, env, cache):
    # `:=` is expanded once, when the Makefile is read; `=` and `?=` each time (the same here).
    if name in cache:
        return cache[name]
    if name in variables:
        _, raw = variables[name]
        value = expand(raw, variables, env, cache)
    else:
        value = env.get(name, "")
    cache[name] = value
    return value


def seed_for(folder, account, tfstate_bucket):
    """A sandbox seed (YAML text) with the parameters and secrets the folder's files name."""
    text = ""
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and not name.endswith(".tfstate"):
            with open(path, encoding="utf-8", errors="replace") as f:
                text += f.read() + "\n"
    text = re.sub(r"\{\{\s*must_env\s*`AWS_ACCOUNT_ID`\s*\}\}", account, text)
    params = set(re.findall(r"ssm\s+`([^`]+)`", text))
    params |= set(re.findall(r"valueFrom:\s*'(/[^']+)'", text))
    params |= {"/" + p for p in re.findall(r"arn:aws:ssm:[^:]*:[^:]*:parameter/([^'\"\s]+)", text)}
    secrets = {}
    for n in re.findall(r"secretsmanager_arn\s+`([^`]+)`", text):
        secrets.setdefault(n, None)
    secret_arn = re.compile(r"(arn:aws:secretsmanager:[^:]*:[^:]*:secret:([^:'\"\s]+)-[A-Za-z0-9]{6})")
    for arn, n in secret_arn.findall(text):
        secrets[n] = arn
    out = ["parameters:"] if params else []
    for p in sorted(params):
        out.append(f"  - {{name: '{p}', type: String, value: 'value of {p}'}}")
    if secrets:
        out.append("secrets:")
    for n, arn in sorted(secrets.items()):
        line = f"  - {{name: '{n}', secretString: '{{\"foo\": \"value of {n}\"}}'"
        out.append(line + (f", arn: '{arn}'}}" if arn else "}"))
    if tfstate_bucket:
        out.append("objects:")
        out.append(f"  - {{bucket: {tfstate_bucket}, key: terraform.tfstate, "
                   f"file: {os.path.join(os.path.abspath(folder), 'terraform.tfstate')}}}")
    return "\n".join(out) + "\n"


def start_sandbox(cortado, folder, seed, env, log_path, prepare=True):
    """`cortado sandbox serve --seed ... --prepare ecspresso.yml` in the folder: (process,
    endpoint), or None with what it said when it did not start."""
    log = open(log_path, "a")
    args = [cortado, "--region", REGION, "--envfile", "envfile",
            "--ext-str", "DEPLOYMENT_CONTROLLER=" + env.get("DEPLOYMENT_CONTROLLER", "ECS"),
            "sandbox", "serve", "--port", "0", "--speed", "60", "--seed", seed]
    if prepare:
        args += ["--prepare", "ecspresso.yml"]
    log.write("$ " + " ".join(shlex.quote(a) for a in args) + "\n")
    proc = subprocess.Popen(args, cwd=folder, env=env, stdout=log, stderr=subprocess.PIPE,
                            text=True)
    seen = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        log.write(line)
        if line.startswith("cortado sandbox listening on "):
            endpoint = line.split(" on ", 1)[1].strip()
            # Keep reading its stderr so that it never blocks on a full pipe.
            threading.Thread(target=lambda: [log.write(l) for l in proc.stderr], daemon=True).start()
            return proc, endpoint
    proc.kill()
    proc.wait()
    return None, "".join(seen)


def start_some_sandbox(cortado, folder, work, env, tfstate_bucket, log_path):
    """The sandbox the suite runs against: seeded with every lookup and prepared from
    ecspresso.yml; a cortado that cannot do that (an older one) gets what it can take, with
    a notice: SSM parameters only, then no --prepare."""
    full = seed_for(folder, ACCOUNT, tfstate_bucket)
    params_only = full.split("secrets:")[0].split("objects:")[0]
    for name, seed, prepare in [("full", full, True), ("SSM parameters only", params_only, True),
                                ("SSM parameters only, without --prepare", params_only, False)]:
        path = os.path.join(work, "seed.yml")
        with open(path, "w") as f:
            f.write(seed)
        proc, got = start_sandbox(cortado, folder, path, env, log_path, prepare)
        if proc:
            if name != "full":
                print(f"notice: this cortado could not start the full sandbox; running against "
                      f"one seeded with {name}", flush=True)
            return proc, got
        print(f"notice: the sandbox ({name}) did not start: {why(got)}", flush=True)
    sys.exit(2)


def history(cortado, folder, env, log_path):
    """The account's history of the family: one earlier revision (an older nginx tag)."""
    earlier = dict(env, NGINX_VERSION="1.25")
    out = subprocess.run([cortado, "--envfile", "envfile", "--ext-str",
                          "DEPLOYMENT_CONTROLLER=" + env.get("DEPLOYMENT_CONTROLLER", "ECS"),
                          "register"], cwd=folder, env=earlier, capture_output=True, text=True)
    with open(log_path, "a") as log:
        log.write(f"# history: an earlier revision of the family\n{out.stdout}{out.stderr}")
    if out.returncode != 0:
        print(f"notice: could not register the family's earlier revision: {why(out.stderr)}",
              flush=True)


def shims(cortado, folder):
    """A folder with `ecspresso` running cortado, and `uuidgen` when the machine has none."""
    with open(os.path.join(folder, "ecspresso"), "w") as f:
        f.write(f"#!/bin/sh\nexec {shlex.quote(cortado)} \"$@\"\n")
    os.chmod(os.path.join(folder, "ecspresso"), 0o755)
    if shutil.which("uuidgen") is None:
        with open(os.path.join(folder, "uuidgen"), "w") as f:
            f.write("#!/bin/sh\nexec python3 -c 'import uuid; print(uuid.uuid4())'\n")
        os.chmod(os.path.join(folder, "uuidgen"), 0o755)
    return folder


def why(text):
    """The line of a failed command's output that says why: its first `error:` line, else its
    last line."""
    lines = [l.strip() for l in text.strip().splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("error:")]
    return (errors or lines or [""])[0 if errors else -1][:200]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="a checkout of kayac/ecspresso's tests/ci")
    ap.add_argument("--cortado", default=shutil.which("cortado") or "cortado",
                    help="the cortado binary (default: cortado on PATH)")
    ap.add_argument("--only", help="comma-separated targets (default: all, in the suite's order)")
    ap.add_argument("--tfstate-bucket", help="seed terraform.tfstate there and set TFSTATE_BUCKET")
    ap.add_argument("--timeout", type=int, default=180, help="seconds per line (default 180)")
    ap.add_argument("--logs", help="folder for each line's output (default: a temporary one)")
    opts = ap.parse_args()
    folder = os.path.abspath(opts.folder)
    cortado = os.path.abspath(opts.cortado) if os.path.sep in opts.cortado else opts.cortado
    if shutil.which(cortado) is None:
        sys.exit(f"cortado not found: {opts.cortado} (pass --cortado PATH)")
    makefile = os.path.join(folder, "Makefile")
    if not os.path.isfile(makefile):
        sys.exit(f"{makefile} does not exist: pass the tests/ci folder of an ecspresso checkout")
    work = tempfile.mkdtemp(prefix="ecspresso-ci-")
    logs = os.path.abspath(opts.logs or os.path.join(work, "logs"))
    os.makedirs(logs, exist_ok=True)
    os.makedirs(os.path.join(work, "bin"))
    bin_dir = shims(cortado, os.path.join(work, "bin"))

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CORTADO_", "ECSPRESSO_"))}
    env.update({
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "AWS_ACCOUNT_ID": ACCOUNT, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_EC2_METADATA_DISABLED": "true", "NO_COLOR": "1",
    })
    if opts.tfstate_bucket:
        env["TFSTATE_BUCKET"] = opts.tfstate_bucket
    with open(makefile) as f:
        variables, exported, targets = parse_makefile(f.read())
    cache = {}
    for name in exported:
        env[name] = value_of(name, variables, env, cache)
    order = opts.only.split(",") if opts.only else ORDER
    missing = [t for t in order if t not in targets]
    if missing:
        sys.exit(f"the Makefile has no target {', '.join(missing)}")

    server, endpoint = start_some_sandbox(cortado, folder, work, env, opts.tfstate_bucket,
                                          os.path.join(logs, "sandbox.log"))
    env["AWS_ENDPOINT_URL"] = endpoint
    history(cortado, folder, env, os.path.join(logs, "sandbox.log"))
    results = []
    try:
        for target in order:
            for n, line in enumerate(targets[target], 1):
                cmd = expand(line, variables, env, cache)
                t0 = time.time()
                try:
                    # No terminal for the lines: `exec` would otherwise take the runner's.
                    out = subprocess.run(["sh", "-c", cmd], cwd=folder, env=env,
                                         stdin=subprocess.DEVNULL, capture_output=True,
                                         text=True, timeout=opts.timeout)
                    code, stdout, stderr = out.returncode, out.stdout, out.stderr
                except subprocess.TimeoutExpired as e:
                    def text(b):
                        return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")
                    code, stdout, stderr = "timeout", text(e.stdout), text(e.stderr) + "\n(timed out)"
                with open(os.path.join(logs, f"{target}-{n}.log"), "w") as f:
                    f.write(f"$ {cmd}\n# exit {code} after {time.time() - t0:.1f}s\n"
                            f"--- stdout\n{stdout}\n--- stderr\n{stderr}\n")
                ok = code == 0
                results.append(ok)
                reason = "" if ok else "  <- " + why(stderr or stdout)
                shown = cmd.replace(cortado, "cortado")
                print(f"{'PASS' if ok else 'FAIL'}  {target:<25} exit {str(code):<7} {shown}{reason}",
                      flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"{sum(results)} of {len(results)} lines pass (logs: {logs})")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
