#!/usr/bin/env python3
"""Chaos driver and end-state check of the cluster soak (tests/cluster/soak.sh runs it).

    soak.py --personio URL --reteach URL --namespace NS --tenant T --release R --chart DIR
            --helm HELM --run-dir RUN --seed S --rounds N --deadline SECONDS --report FILE

Two leader-elected operator pods backfill every certificate the reteach simulator holds into the
Personio simulator. While they do, the driver works through a seeded, reproducible plan of chaos
actions, each fired when the backfill has reached its share of the certificates (so all of them
hit the operator mid-backfill, however fast the machine):

  crash         SIGKILL of an operator process (the kubelet restarts the container in place)
  delete        `kubectl delete pod` (SIGTERM: the pod shuts down and releases the Lease)
  force-delete  `kubectl delete pod --grace-period=0 --force` (the API object goes at once, the
                process lingers; a new pod starts beside it)
  pause         SIGSTOP of the Lease holder's process for longer than the Lease, then SIGCONT: the
                standby takes over while the old leader sleeps mid-run, then the old one wakes up
  apiserver     kube-apiserver stopped, down for a few seconds, started again with its own
                command line (exactly once per soak)
  upgrade       `helm upgrade` with a new pod annotation: both pods are replaced (exactly once)

Then it waits until the CertificateSync has finished (ledger cursor set, no full pass, nothing in
flight or pending) and reads the end state from the simulators' own state (their read-only
`/sim/inspect/...` endpoints): duplicates, missing certificates, documents of broken certificates,
wrong owners, and whether the ledger's set-aside entries are exactly the broken certificates.
Everything is bounded by --deadline. Exit 0 only when every check holds; the report (JSON) is
written in any case.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request

MARKER = re.compile(r"reteach-certificate:([A-Za-z0-9_-]+)")
KINDS = ("crash", "delete", "force-delete", "pause")


def log(message):
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def get_json(url):
    with urllib.request.urlopen(url, timeout=20) as response:
        return json.loads(response.read())


def kubectl(*args, check=True, timeout=30):
    result = subprocess.run(
        ["kubectl", *args], capture_output=True, text=True, timeout=timeout
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def kubectl_json(*args):
    """`kubectl get … -o json`, or None while the API server does not answer."""
    try:
        return json.loads(kubectl(*args, "-o", "json", timeout=10))
    except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None


class Cluster:
    """The operator's pods, their processes on this host, the Lease and the API server."""

    def __init__(self, args):
        self.args = args
        self.selector = f"app.kubernetes.io/instance={args.release}"

    def pods(self):
        listing = kubectl_json("-n", self.args.namespace, "get", "pods", "-l", self.selector)
        if not listing:
            return []
        return [
            p["metadata"]["name"]
            for p in listing["items"]
            if not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") == "Running"
        ]

    def lease(self):
        listing = kubectl_json("-n", self.args.namespace, "get", "leases")
        for item in (listing or {}).get("items", []):
            if item["metadata"]["name"].startswith(self.args.release):
                return item["spec"]
        return {}

    def holder(self):
        return self.lease().get("holderIdentity") or ""

    @staticmethod
    def pid_of(pod):
        """The host pid of the operator process of `pod` (its environment names the pod)."""
        wanted = f"POD_NAME={pod}".encode()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read()
                if b"reteach-personio-operator" not in cmdline or b"run" not in cmdline:
                    continue
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if wanted in f.read().split(b"\0"):
                        return int(entry)
            except OSError:
                continue
        return None

    def restart_apiserver(self, down_seconds):
        """Stops kube-apiserver (SIGTERM), keeps it down, starts it again with the command line,
        working directory and log it had; its new pid goes where stop.sh looks for it."""
        pid_file = os.path.join(self.args.run_dir, "kube-apiserver.pid")
        with open(pid_file) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode() for a in f.read().split(b"\0") if a]
        cwd = os.readlink(f"/proc/{pid}/cwd")
        stopped = time.time()
        os.kill(pid, signal.SIGTERM)
        for _ in range(300):
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        time.sleep(down_seconds)
        with open(os.path.join(self.args.run_dir, "logs", "kube-apiserver.log"), "ab") as out:
            process = subprocess.Popen(
                argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        with open(pid_file, "w") as f:
            f.write(f"{process.pid}\n")
        for _ in range(180):
            try:
                if kubectl("get", "--raw", "/readyz", timeout=5).strip() == "ok":
                    return time.time() - stopped
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
            time.sleep(1)
        raise RuntimeError("kube-apiserver did not come back within 180 s")


class Soak:
    def __init__(self, args):
        self.args = args
        self.cluster = Cluster(args)
        self.rng = random.Random(args.seed)
        self.started = time.time()
        self.actions = []
        self.holders = []
        inventory = get_json(f"{args.reteach}/sim/inspect/certificates")["certificates"]
        self.owner = {c["certificateId"]: c["externalId"] for c in inventory}
        self.broken = {c["certificateId"] for c in inventory if c["broken"]}
        self.owed = {c for c, owner in self.owner.items() if owner and c not in self.broken}
        self.plan = self.make_plan()

    def make_plan(self):
        """Seeded: which actions, in which order, at which share of the backfill, on whom."""
        # Every kind at least once (the API server and the upgrade exactly once), the rest drawn;
        # spread over 5 %..85 % of the backfill, one action per stretch of it.
        kinds = ["apiserver", "upgrade", *KINDS]
        kinds += [self.rng.choice(KINDS) for _ in range(self.args.rounds - len(kinds))]
        self.rng.shuffle(kinds)
        shares = [0.05 + 0.8 * (i + self.rng.uniform(0.2, 0.8)) / len(kinds)
                  for i in range(len(kinds))]
        return [
            {
                "kind": kind,
                "at": round(share, 3),
                "victim": self.rng.choice(("leader", "leader", "standby")),
                "seconds": round(self.rng.uniform(3, 8) if kind == "apiserver" else
                                 self.rng.uniform(20, 30), 1),
                "gap": round(self.rng.uniform(2, 6), 1),
            }
            for kind, share in zip(kinds, shares)
        ]

    def elapsed(self):
        return round(time.time() - self.started, 1)

    def documents(self):
        return get_json(f"{self.args.personio}/sim/inspect/documents")

    def progress(self):
        marked = {
            m.group(1)
            for d in self.documents()["documents"]
            for m in [MARKER.search(d.get("comment") or "")]
            if m
        }
        return len(marked & self.owed) / max(len(self.owed), 1)

    def sample_holder(self):
        holder = self.cluster.holder()
        if holder and (not self.holders or self.holders[-1] != holder):
            self.holders.append(holder)
        return holder

    def victim(self, which):
        pods = self.cluster.pods()
        leader = self.sample_holder()
        if which == "leader" and leader in pods:
            return leader
        others = [p for p in pods if p != leader]
        return (others or pods or [None])[0]

    def fire(self, step, progress):
        kind = step["kind"]
        record = {"kind": kind, "atSeconds": self.elapsed(), "progress": round(progress, 3)}
        if kind == "apiserver":
            record["downSeconds"] = round(self.cluster.restart_apiserver(step["seconds"]), 1)
        elif kind == "upgrade":
            began = time.time()
            subprocess.run(
                [self.args.helm, "upgrade", self.args.release, self.args.chart,
                 "--namespace", self.args.namespace, "--reuse-values", "--wait",
                 "--timeout", "240s", "--set-string", f"podAnnotations.soakRoll=r{len(self.actions)}"],
                check=True, capture_output=True, timeout=300,
            )
            record["seconds"] = round(time.time() - began, 1)
        else:
            pod = self.victim("leader" if kind == "pause" else step["victim"])
            record["pod"] = pod
            record["wasLeader"] = pod == self.cluster.holder()
            if pod is None:
                record["skipped"] = "no running operator pod"
            elif kind in ("crash", "pause"):
                pid = self.cluster.pid_of(pod)
                if pid is None:
                    record["skipped"] = "process not found"
                elif kind == "crash":
                    os.kill(pid, signal.SIGKILL)
                else:
                    os.kill(pid, signal.SIGSTOP)
                    try:
                        until = time.time() + step["seconds"]
                        while time.time() < until:
                            self.sample_holder()
                            time.sleep(1)
                    finally:
                        os.kill(pid, signal.SIGCONT)
                    record["pausedSeconds"] = step["seconds"]
                    record["holderDuringPause"] = self.cluster.holder()
            else:
                extra = ["--grace-period=0", "--force"] if kind == "force-delete" else []
                kubectl("-n", self.args.namespace, "delete", "pod", pod, "--wait=false", *extra)
        log(f"chaos {len(self.actions) + 1}/{len(self.plan)}: {record}")
        self.actions.append(record)

    def finished(self):
        """The CertificateSync's backfill is over: cursor set, no full pass, nothing in flight
        or pending, and every broken certificate set aside."""
        sync = kubectl_json("-n", self.args.tenant, "get", "certificatesync", "certificates")
        ledger = ((sync or {}).get("status") or {}).get("ledger") or {}
        set_aside = {s["certificateId"] for s in ledger.get("setAside", [])}
        return bool(
            ledger.get("cursor")
            and not ledger.get("fullPass")
            and not ledger.get("inFlight")
            and not ledger.get("pending")
            and set_aside == self.broken
        ), sync

    def run(self):
        log(f"{len(self.owner)} certificates ({len(self.owed)} owed, {len(self.broken)} broken); "
            f"plan (seed {self.args.seed}): {[(s['kind'], s['at']) for s in self.plan]}")
        deadline = self.started + self.args.deadline
        ready_at = time.time()
        pending = list(self.plan)
        sync = None
        while time.time() < deadline:
            progress = self.progress()
            self.sample_holder()
            if pending and progress >= pending[0]["at"] and time.time() >= ready_at:
                step = pending.pop(0)
                self.fire(step, progress)
                ready_at = time.time() + step["gap"]
                continue
            if not pending:
                done, sync = self.finished()
                if done:
                    break
            time.sleep(1)
        return self.check(sync, timed_out=time.time() >= deadline)

    def check(self, sync, timed_out):
        if sync is None:
            sync = kubectl_json("-n", self.args.tenant, "get", "certificatesync", "certificates")
        inventory = self.documents()
        copies, foreign, wrong_owner = {}, 0, 0
        for document in inventory["documents"]:
            found = MARKER.search(document.get("comment") or "")
            if not found:
                continue
            certificate = found.group(1)
            if certificate not in self.owner:
                foreign += 1
                continue
            copies[certificate] = copies.get(certificate, 0) + 1
            if str(document["ownerId"]) != str(self.owner[certificate]):
                wrong_owner += 1
        status = (sync or {}).get("status") or {}
        ledger = status.get("ledger") or {}
        set_aside = {s["certificateId"] for s in ledger.get("setAside", [])}
        failed = {f["certificateId"] for f in status.get("failures", []) if f.get("certificateId")}
        counts = {}
        for action in self.actions:
            counts[action["kind"]] = counts.get(action["kind"], 0) + 1
        report = {
            "seed": self.args.seed,
            "certificates": len(self.owner),
            "owed": len(self.owed),
            "broken": len(self.broken),
            "durationSeconds": self.elapsed(),
            "timedOut": timed_out,
            "chaos": counts,
            "actions": self.actions,
            "leaseHolders": len(self.holders),
            "uploadRequests": inventory["uploadRequests"],
            "minimumUploads": len(self.owed),
            "documents": sum(copies.values()),
            "duplicates": sum(n - 1 for n in copies.values() if n > 1),
            "missing": len(self.owed - set(copies)),
            "brokenUploaded": len(self.broken & set(copies)),
            "foreignMarkers": foreign,
            "wrongOwner": wrong_owner,
            "setAside": len(set_aside),
            "setAsideMatchesBroken": set_aside == self.broken,
            "failuresOutsideSetAside": len(failed - self.broken),
            "uploadedTotal": status.get("uploadedTotal"),
        }
        problems = [
            f"{key} = {report[key]}"
            for key in ("duplicates", "missing", "brokenUploaded", "foreignMarkers", "wrongOwner",
                        "failuresOutsideSetAside")
            if report[key]
        ]
        if not report["setAsideMatchesBroken"]:
            problems.append(f"set aside {sorted(set_aside)} != broken {sorted(self.broken)}")
        if timed_out:
            problems.append(f"not finished within {self.args.deadline} s")
        if len(self.actions) < len(self.plan):
            problems.append(f"only {len(self.actions)} of {len(self.plan)} chaos actions ran")
        report["problems"] = problems
        with open(self.args.report, "w") as f:
            json.dump(report, f, indent=2)
        summary = {k: v for k, v in report.items() if k != "actions"}
        log(f"end state: {json.dumps(summary)}")
        return 0 if not problems else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for name in ("personio", "reteach", "namespace", "tenant", "release", "chart", "helm",
                 "run-dir", "report"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--seed", type=int, default=27)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--deadline", type=float, default=360)
    args = parser.parse_args()
    args.personio, args.reteach = args.personio.rstrip("/"), args.reteach.rstrip("/")
    sys.exit(Soak(args).run())


if __name__ == "__main__":
    main()
