#!/usr/bin/env bash
# Versions and releases: the crate (Cargo.toml, Cargo.lock), the chart's `version` and `appVersion`
# (and the Dockerfile's default VERSION label) always carry one number; CHANGELOG.md keeps the notes; RELEASES records each release's commit.
#
#   scripts/release.sh bump X.Y.Z   set all three versions to the next release's number (the first
#                                   change under charts/ or crds/ after a release needs it); keeps
#                                   the notes under "## [Unreleased]"
#   scripts/release.sh cut X.Y.Z    release: bump, move "Unreleased" to "## [X.Y.Z] - DATE", keep
#                                   this release's CRDs as upgrade fixtures (tests/fixtures/vX.Y.Z),
#                                   commit "Release X.Y.Z", record that commit in RELEASES (second
#                                   commit), tag vX.Y.Z locally. Needs a clean work tree and notes.
#   scripts/release.sh check        CI: versions in step, every recorded release in the CHANGELOG and
#                                   in the history; a change under charts/ or crds/ since the last
#                                   release comes with a higher version and a CHANGELOG entry
#   scripts/release.sh previous     prints "VERSION COMMIT" of the last recorded release
#
# Versions are Semantic Versions (MAJOR.MINOR.PATCH, optional -prerelease). Git tags may not travel
# with a clone, so nothing here relies on them: RELEASES holds the commits.
set -euo pipefail

REPO=${RPO_RELEASE_REPO:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
cd "$REPO"
CHART_YAML=charts/reteach-personio-operator/Chart.yaml
PACKAGE=reteach-personio-operator
REPO_URL=https://github.com/reteach/reteach-personio-operator

die() { printf 'release: %s\n' "$*" >&2; exit 1; }

semver_ok() { [[ $1 =~ ^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$ ]]; }

# Exit status 0 when $1 > $2 in SemVer precedence (a pre-release sorts before its release).
semver_gt() {
  python3 - "$1" "$2" <<'PY'
import sys
def key(v):
    core, _, pre = v.partition("-")
    nums = tuple(int(x) for x in core.split("."))
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split(".")) if pre else ()
    return nums, (0,) if pre else (1,), parts
sys.exit(0 if key(sys.argv[1]) > key(sys.argv[2]) else 1)
PY
}

cargo_version() { sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' Cargo.toml | head -1; }
lock_version() { awk -v p="$PACKAGE" '$0=="name = \""p"\"" {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock; }
chart_field() { sed -n "s/^$1: *\"\{0,1\}\([^\"]*\)\"\{0,1\} *$/\1/p" "$CHART_YAML" | head -1; }

# The last line of RELEASES that is not a comment: "VERSION COMMIT DATE".
last_release() { grep -v '^[[:space:]]*\(#\|$\)' RELEASES | tail -1; }

# The "## [Unreleased]" section's lines (without its heading), up to the next "## [".
unreleased_notes() { awk '/^## \[Unreleased\]/ {on=1; next} /^## \[/ {on=0} on' CHANGELOG.md; }

set_versions() { # X.Y.Z
  local version=$1
  sed -i "/^\[package\]/,/^\[/s/^version = \".*\"/version = \"$version\"/" Cargo.toml
  awk -v p="$PACKAGE" -v v="$version" '
    $0=="name = \""p"\"" {print; getline; print "version = \"" v "\""; next} {print}' Cargo.lock >Cargo.lock.new
  mv Cargo.lock.new Cargo.lock
  sed -i "s/^version: .*/version: $version/; s/^appVersion: .*/appVersion: \"$version\"/" "$CHART_YAML"
  sed -i "s/^ARG VERSION=.*/ARG VERSION=$version/" Dockerfile
}

check_versions_in_step() {
  local crate lock chart app docker
  crate=$(cargo_version) lock=$(lock_version) chart=$(chart_field version) app=$(chart_field appVersion)
  docker=$(sed -n 's/^ARG VERSION=//p' Dockerfile)
  semver_ok "$crate" || die "Cargo.toml version '$crate' is not a semantic version"
  [ "$crate" = "$lock" ] || die "Cargo.lock says $PACKAGE $lock, Cargo.toml $crate: run cargo update -p $PACKAGE"
  [ "$crate" = "$chart" ] && [ "$crate" = "$app" ] ||
    die "versions out of step: Cargo.toml $crate, $CHART_YAML version $chart, appVersion $app (use scripts/release.sh bump X.Y.Z)"
  [ "$crate" = "$docker" ] || die "Dockerfile's ARG VERSION=$docker, Cargo.toml $crate (use scripts/release.sh bump X.Y.Z)"
}

cmd_bump() {
  local version=${1:?usage: release.sh bump X.Y.Z}
  semver_ok "$version" || die "'$version' is not a semantic version (MAJOR.MINOR.PATCH[-pre])"
  local last_version
  read -r last_version _ < <(last_release)
  semver_gt "$version" "$last_version" || die "$version is not above the last release $last_version"
  set_versions "$version"
  echo "Cargo.toml, Cargo.lock, $CHART_YAML and Dockerfile now say $version" >&2
}

# tests/fixtures/vX.Y.Z: this release's CRDs, and the previous release's objects as a start (add
# the fields this release introduced by hand); tests/e2e_alone/upgrade_fixtures.rs applies every such
# directory. Only where the repository keeps fixtures.
snapshot_fixtures() { # version last_version
  local dir=tests/fixtures/v$1 previous=tests/fixtures/v$2
  [ -d tests/fixtures ] && [ -d crds ] || return 0
  mkdir -p "$dir/crds"
  cp crds/*.yaml "$dir/crds/"
  local from=${2//./\\.} file
  for file in objects.yaml README.md; do
    [ -f "$previous/$file" ] && [ ! -f "$dir/$file" ] || continue
    sed "s/\b$from\b/$1/g" "$previous/$file" >"$dir/$file"
  done
}

cmd_cut() {
  local version=${1:?usage: release.sh cut X.Y.Z} today last_version
  [ -z "$(git status --porcelain)" ] || die "the work tree has uncommitted changes; commit or stash them first"
  [ -n "$(unreleased_notes | grep -v '^[[:space:]]*$' || true)" ] ||
    die "nothing under '## [Unreleased]' in CHANGELOG.md: say what this release changes"
  read -r last_version _ < <(last_release)
  cmd_bump "$version"
  today=$(date -u +%Y-%m-%d)
  python3 - "$version" "$today" "$last_version" "$REPO_URL" <<'PY'
import re, sys
version, today, last, url = sys.argv[1:5]
text = open("CHANGELOG.md").read()
text = text.replace("## [Unreleased]\n", f"## [Unreleased]\n\n## [{version}] - {today}\n", 1)
text = re.sub(r"^\[Unreleased\]: .*$",
              f"[Unreleased]: {url}/compare/v{version}...HEAD\n[{version}]: {url}/compare/v{last}...v{version}",
              text, count=1, flags=re.M)
open("CHANGELOG.md", "w").write(text)
PY
  snapshot_fixtures "$version" "$last_version"
  git add Cargo.toml Cargo.lock "$CHART_YAML" Dockerfile CHANGELOG.md
  [ ! -d "tests/fixtures/v$version" ] || git add "tests/fixtures/v$version"
  git commit -q -m "Release $version"
  local commit
  commit=$(git rev-parse HEAD)
  echo "$version $commit $today" >>RELEASES
  git add RELEASES
  git commit -q -m "Record release $version ($commit)"
  git tag -a "v$version" -m "Release $version" "$commit" 2>/dev/null || true
  echo "released $version at $commit (tag v$version; push the tag if your remote keeps tags)" >&2
}

cmd_check() {
  check_versions_in_step
  local version commit date crate
  crate=$(cargo_version)
  grep -q '^## \[Unreleased\]' CHANGELOG.md || die "CHANGELOG.md has no '## [Unreleased]' section"
  while read -r version commit date; do
    semver_ok "$version" || die "RELEASES: '$version' is not a semantic version"
    git cat-file -e "$commit^{commit}" 2>/dev/null ||
      die "RELEASES: release $version's commit $commit is not in this clone (a shallow clone? fetch the full history)"
    grep -q "^## \[$version\] - $date" CHANGELOG.md || die "CHANGELOG.md has no '## [$version] - $date' heading"
  done < <(grep -v '^[[:space:]]*\(#\|$\)' RELEASES)
  read -r version commit _ < <(last_release)
  if git diff --quiet "$commit" -- charts crds; then
    echo "release check: versions in step ($crate); charts/ and crds/ unchanged since $version" >&2
    return 0
  fi
  local changed
  changed=$(git diff --name-only "$commit" -- charts crds | head -5 | tr '\n' ' ')
  semver_gt "$crate" "$version" ||
    die "charts/ or crds/ changed since release $version ($changed...) but the version is still $crate: run scripts/release.sh bump X.Y.Z (X.Y.Z > $version)"
  [ -n "$(unreleased_notes | grep '^- ' || true)" ] && ! cmp -s <(git show "$commit:CHANGELOG.md" 2>/dev/null) CHANGELOG.md ||
    die "charts/ or crds/ changed since release $version ($changed...) without an entry under '## [Unreleased]' in CHANGELOG.md"
  echo "release check: versions in step ($crate > $version); chart/CRD changes since $version have CHANGELOG entries" >&2
}

cmd_previous() {
  local version commit
  read -r version commit _ < <(last_release)
  [ -n "$commit" ] || die "RELEASES records no release"
  echo "$version $commit"
}

case "${1:-}" in
bump) cmd_bump "${2:-}" ;;
cut) cmd_cut "${2:-}" ;;
check) cmd_check ;;
previous) cmd_previous ;;
*) die "usage: release.sh bump X.Y.Z | cut X.Y.Z | check | previous" ;;
esac
