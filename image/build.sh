#!/usr/bin/env bash
# Builds Governor's image with buildah (no daemon; chroot isolation, so it runs
# as root in a container too), tags it as the chart's default image, exports it
# to an OCI layout and prints the tag and the compressed size (the sum of the
# gzip'ed layers: what a registry stores and a node pulls).
#
#   image/build.sh                     the Dockerfile's default target: a release
#                                      build in RUST_IMAGE, 54 min cold on 2 busy cores
#   image/build.sh --prebuilt BINARY   the `prebuilt` target around a binary built
#                                      here (glibc of this machine), in seconds
# Options:
#   --tag TAG          default ghcr.io/governor-dev/governor:<workspace version>
#   --rust-image IMG   the builder image (Dockerfile ARG RUST_IMAGE)
#   --storage DIR      buildah storage under DIR (vfs), instead of the system's
#   --oci DIR          keep the OCI layout in DIR (default: a temp folder, removed)
# Environment: BUILDAH_ISOLATION (default chroot), GOVERNOR_GIT_COMMIT (the
# commit stamped by a full build; default `git rev-parse --short=12 HEAD`).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
fail() { printf 'image/build.sh: %s\n' "$*" >&2; exit 2; }

prebuilt="" tag="" rust_image="" storage="" oci=""
while [ $# -gt 0 ]; do
  case $1 in
    --prebuilt|--tag|--rust-image|--storage|--oci)
      [ $# -ge 2 ] && [ -n "$2" ] || fail "$1 needs a value"
      case $1 in
        --prebuilt) prebuilt=$2 ;; --tag) tag=$2 ;; --rust-image) rust_image=$2 ;;
        --storage) storage=$2 ;; --oci) oci=$2 ;;
      esac
      shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) fail "unknown argument $1 (see --help)" ;;
  esac
done

command -v buildah >/dev/null || fail "buildah not found: apt-get install buildah (tests/tools/install.sh installs it)"

# The workspace version: [workspace.package] version in Cargo.toml.
version=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml")
[ -n "$version" ] || fail "no [workspace.package] version in $repo/Cargo.toml"
tag=${tag:-ghcr.io/governor-dev/governor:$version}

store=()
[ -z "$storage" ] || store=(--root "$storage/root" --runroot "$storage/run" --storage-driver vfs)
isolation=${BUILDAH_ISOLATION:-chroot}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# buildah's large temporary files (layer tars) go here, not to /var/tmp.
export TMPDIR=$work

start=$SECONDS
if [ -n "$prebuilt" ]; then
  [ -x "$prebuilt" ] || fail "--prebuilt $prebuilt: not an executable file"
  # The labels say what the binary says of itself.
  line=$("$prebuilt" --version) || fail "--prebuilt $prebuilt: --version failed"
  [[ $line =~ ^governor\ ([^ ]+)\ \(([^\)]+)\)$ ]] || fail "--prebuilt $prebuilt: --version printed '$line'"
  [ "${BASH_REMATCH[1]}" = "$version" ] \
    || fail "--prebuilt $prebuilt is version ${BASH_REMATCH[1]}, the workspace is $version"
  commit=${BASH_REMATCH[2]}
  bash "$repo/image/rootfs.sh" "$prebuilt" "$work/context/rootfs"
  buildah "${store[@]}" build --isolation "$isolation" --target prebuilt \
    -f "$repo/Dockerfile" \
    --build-arg GOVERNOR_VERSION="$version" --build-arg GOVERNOR_GIT_COMMIT="$commit" \
    -t "$tag" "$work/context" >&2
else
  commit=${GOVERNOR_GIT_COMMIT:-$(git -C "$repo" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
  args=(--build-arg GOVERNOR_VERSION="$version" --build-arg GOVERNOR_GIT_COMMIT="$commit")
  [ -z "$rust_image" ] || args+=(--build-arg RUST_IMAGE="$rust_image")
  buildah "${store[@]}" build --isolation "$isolation" -f "$repo/Dockerfile" \
    "${args[@]}" -t "$tag" "$repo" >&2
fi
built=$((SECONDS - start))

oci=${oci:-$work/oci}
rm -rf "$oci"
buildah "${store[@]}" push "$tag" "oci:$oci:$version" >&2

# index.json -> the manifest -> its layers' sizes (Go writes compact JSON with
# mediaType, digest, size in that order).
manifest=$(grep -o '"digest":"sha256:[0-9a-f]*"' "$oci/index.json" | head -n1 | sed 's/.*sha256:\([0-9a-f]*\)"/\1/')
[ -n "$manifest" ] || fail "no manifest in $oci/index.json"
size=0
while read -r n; do size=$((size + n)); done < <(
  grep -o '"mediaType":"application/vnd.oci.image.layer[^"]*","digest":"sha256:[0-9a-f]*","size":[0-9]*' \
    "$oci/blobs/sha256/$manifest" | sed 's/.*"size"://')
[ "$size" -gt 0 ] || fail "no layers in the manifest $manifest"

echo "image: $tag (governor $version, commit $commit), built in ${built} s"
echo "compressed size: $size bytes ($(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }') MB)"
