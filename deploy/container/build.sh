#!/usr/bin/env bash
# Build the images with podman from Debian alone: a bookworm root file system made by
# debootstrap and imported as the base (no registry image needed), wheels built on the host
# so the build stage installs offline, then the Containerfiles.
#   deploy/container/build.sh scorer|models|triton|base [TAG]
# Needs root (debootstrap, podman's storage); not run by CI (minutes; see docs/production.md).
set -euo pipefail
what=${1:?scorer|models|triton|base}
tag=${2:-0.1.0}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$root/var/container
base=localhost/scorer-debian:bookworm
mkdir -p "$work"

if ! podman image exists "$base"; then
  echo "debootstrap: Debian bookworm minbase -> $base" >&2
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >"$work/debootstrap.log"
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["/bin/bash"]' - "$base" >/dev/null
  rm -rf "$work/rootfs"
fi
[ "$what" = base ] && exit 0

# The build context: only what the Containerfiles copy (not .venv, .git or var/).
ctx=$work/context
rm -rf "$ctx" && mkdir -p "$ctx/deploy" "$ctx/var/container"
case "$what" in
  scorer)
    if [ ! -d "$work/wheels" ] || [ "$root/pyproject.toml" -nt "$work/wheels" ]; then
      rm -rf "$work/wheels"
      # psutil: scorer.cli imports scorer.bench.harness, which imports it, even for `scorer run`
      "$root/.venv/bin/pip" wheel -q --wheel-dir "$work/wheels" "$root" psutil
    else
      # The dependencies' wheels are kept while pyproject.toml is unchanged; the scorer's own
      # is built from the tree as it is now (a code change alone must ship).
      rm -f "$work"/wheels/scorer-*.whl
      "$root/.venv/bin/pip" wheel -q --no-deps --wheel-dir "$work/wheels" "$root"
    fi
    cp -a "$work/wheels" "$ctx/var/container/wheels"
    cp -a "$root/rule_repository" "$ctx/"
    cp -a "$root/deploy/prometheus" "$root/deploy/container" "$ctx/deploy/"
    image=localhost/scorer:$tag ;;
  models)
    cp -a "$root/model_repository" "$ctx/"
    # Each version's trees compiled here (the host's tl2cgen and gcc; the scorer image has
    # neither) into compiled_trees.so + .json, listed in its SHA256SUMS: the scorer loads one
    # only where the manifest matches its machine and glibc (this host's must be no newer
    # than the image's bookworm 2.36) and the version's model.tl. Fails without tl2cgen/gcc.
    "$root/.venv/bin/python" -m scorer.inference.compiled_shipped add "$ctx"/model_repository/*/[0-9]*
    image=localhost/scorer-$what:$tag ;;
  triton)
    cp -a "$root/model_repository" "$ctx/"
    image=localhost/scorer-$what:$tag ;;
  *) echo "unknown image $what" >&2; exit 2 ;;
esac
podman build --isolation chroot --format docker --quiet -f "$root/deploy/container/Containerfile.$what" --build-arg "BASE=$base" -t "$image" "$ctx"
echo "$image"
