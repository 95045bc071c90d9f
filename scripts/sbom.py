#!/usr/bin/env python3
"""CycloneDX 1.5 SBOM of the production binary, from `cargo metadata` and Cargo.lock.

    scripts/sbom.py [--source DIR] [--revision SHA] [--output FILE]

Lists exactly the crates compiled into `cargo build --release --no-default-features` for the host
platform: normal dependencies reachable from the operator as `cargo tree -e normal` resolves them
(dev-dependencies and build scripts' dependencies are left out; proc-macros are listed, as they
shape the code), each with version, licence, package URL
(`pkg:cargo/NAME@VERSION`) and the SHA-256 checksum Cargo.lock pins, plus the dependency graph.
Needs no network and no extra tool (cargo only): the image build (scripts/build-image.sh, the
Dockerfile) puts it at /usr/share/doc/reteach-personio-operator/sbom.cdx.json and names it in an
OCI label. The output is deterministic for a commit (no timestamps, serial number derived from the
revision and the content), so two builds of one commit carry the same file.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tomllib
import uuid

PACKAGE = "reteach-personio-operator"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # --source overrides it


def host_triple():
    out = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("host: "))


def metadata():
    command = ["cargo", "metadata", "--format-version", "1", "--locked", "--no-default-features",
               "--filter-platform", host_triple(), "--manifest-path", os.path.join(REPO, "Cargo.toml")]
    offline = subprocess.run(command + ["--offline"], capture_output=True, text=True)
    if offline.returncode == 0:
        return json.loads(offline.stdout)
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


def built_crates():
    """(name, version) of every crate `cargo tree` says the production build compiles: cargo's
    real feature resolution, which `cargo metadata`'s resolve over-approximates."""
    command = ["cargo", "tree", "--locked", "-e", "normal", "--no-default-features", "--prefix", "none",
               "--format", "{p}", "--manifest-path", os.path.join(REPO, "Cargo.toml")]
    result = subprocess.run(command + ["--offline"], capture_output=True, text=True)
    if result.returncode != 0:
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    crates = set()
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[1].startswith("v"):
            crates.add((fields[0], fields[1][1:]))
    return crates


def purl(package):
    return f"pkg:cargo/{package['name']}@{package['version']}"


def main():
    global REPO
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=REPO, help="the source tree (default: this checkout)")
    parser.add_argument("--revision", default="unknown", help="the source commit (metadata only)")
    parser.add_argument("--output", help="write here instead of stdout")
    args = parser.parse_args()
    REPO = os.path.abspath(args.source)

    meta = metadata()
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    root = next(p["id"] for p in meta["packages"] if p["name"] == PACKAGE and p["source"] is None)
    with open(os.path.join(REPO, "Cargo.lock"), "rb") as lock_file:
        checksums = {(p["name"], p["version"]): p.get("checksum")
                     for p in tomllib.load(lock_file)["package"]}

    # Normal dependencies only (kind null), walked from the operator's own package, limited to
    # what cargo's feature resolution really builds.
    built = built_crates()
    shipped, edges, todo = set(), {}, [root]
    while todo:
        current = todo.pop()
        if current in shipped:
            continue
        shipped.add(current)
        normal = sorted({dep["pkg"] for dep in nodes[current]["deps"]
                         if any(k["kind"] is None for k in dep["dep_kinds"])
                         and (packages[dep["pkg"]]["name"], packages[dep["pkg"]]["version"]) in built})
        edges[current] = normal
        todo.extend(normal)

    components = []
    for package_id in sorted(shipped - {root}, key=lambda i: (packages[i]["name"], packages[i]["version"])):
        package = packages[package_id]
        component = {"type": "library", "bom-ref": purl(package), "name": package["name"],
                     "version": package["version"], "purl": purl(package)}
        if package.get("license"):
            component["licenses"] = [{"expression": package["license"]}]
        checksum = checksums.get((package["name"], package["version"]))
        if checksum:
            component["hashes"] = [{"alg": "SHA-256", "content": checksum}]
        components.append(component)
    me = packages[root]
    bom = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": {"components": [{"type": "application", "name": "scripts/sbom.py"}]},
            "component": {"type": "application", "bom-ref": purl(me), "name": me["name"],
                          "version": me["version"], "purl": purl(me),
                          "licenses": [{"expression": me.get("license") or "NOASSERTION"}],
                          "properties": [{"name": "vcs:revision", "value": args.revision},
                                         {"name": "cargo:features", "value": "--no-default-features"}]},
        },
        "components": components,
        "dependencies": [{"ref": purl(packages[i]), "dependsOn": [purl(packages[d]) for d in edges[i]]}
                         for i in sorted(shipped, key=lambda i: purl(packages[i]))],
    }
    body = json.dumps(bom, indent=1, sort_keys=True)
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"{args.revision}:{hashlib.sha256(body.encode()).hexdigest()}")
    bom["serialNumber"] = f"urn:uuid:{serial}"
    text = json.dumps(bom, indent=1, sort_keys=True) + "\n"
    if args.output:
        with open(args.output, "w") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    print(f"SBOM: {len(components)} crates in the production build", file=sys.stderr)


if __name__ == "__main__":
    main()
