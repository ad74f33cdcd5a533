#!/usr/bin/env bash
# Makes a Rust builder image without a container registry, for machines that
# cannot pull docker.io/library/rust: a Debian bookworm minbase (debootstrap,
# from this machine's apt mirror) with gcc, libc6-dev, binutils and
# ca-certificates (and this machine's local CAs), plus this machine's Rust
# toolchain (`rustup which cargo`; docs left out). Feed it to a full build:
#   image/build.sh --rust-image "$(image/rust-builder.sh --storage DIR | tail -n1)" --storage DIR
# Options: --storage DIR (buildah storage under DIR, vfs; as image/build.sh),
#          --mirror URL (default: the first URIs/deb line of /etc/apt/sources*).
# Prints the image name on the last line: localhost/governor-rust-builder:<rustc version>.
set -euo pipefail

fail() { printf 'image/rust-builder.sh: %s\n' "$*" >&2; exit 2; }
storage="" mirror=""
while [ $# -gt 0 ]; do
  case $1 in
    --storage) [ $# -ge 2 ] || fail "--storage needs a value"; storage=$2; shift 2 ;;
    --mirror) [ $# -ge 2 ] || fail "--mirror needs a value"; mirror=$2; shift 2 ;;
    *) fail "unknown argument $1" ;;
  esac
done
for tool in buildah debootstrap rustup; do
  command -v "$tool" >/dev/null || fail "$tool not found"
done
if [ -z "$mirror" ]; then
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs: *\([^ ]*\).*/\1/p' | head -n1)
  [ -n "$mirror" ] || mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\).*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
  [ -n "$mirror" ] || fail "no apt mirror found in /etc/apt/sources*; pass --mirror URL"
fi
toolchain=$(dirname "$(dirname "$(rustup which cargo)")")
rustc_version=$("$toolchain/bin/rustc" --version | cut -d' ' -f2)
image=localhost/governor-rust-builder:$rustc_version

store=()
[ -z "$storage" ] || store=(--root "$storage/root" --runroot "$storage/run" --storage-driver vfs)
work=$(mktemp -d)
ctr=""
cleanup() {
  [ -z "$ctr" ] || buildah "${store[@]}" rm "$ctr" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
export TMPDIR=$work

printf '[rust-builder] debootstrap bookworm from %s\n' "$mirror" >&2
debootstrap --variant=minbase --include=gcc,libc6-dev,binutils,ca-certificates \
  bookworm "$work/rootfs" "$mirror" >&2
rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
# This machine's local CAs (e.g. an egress proxy's), so cargo in the builder
# reaches the registry as cargo here does. The runtime image never gets them:
# image/rootfs.sh takes only the Mozilla roots.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$work/rootfs/usr/local/share/ca-certificates/"
  TMPDIR=/tmp chroot "$work/rootfs" update-ca-certificates >&2
fi

printf '[rust-builder] toolchain %s (rustc %s)\n' "$toolchain" "$rustc_version" >&2
ctr=$(buildah "${store[@]}" from scratch)
mnt=$(buildah "${store[@]}" mount "$ctr")
cp -a "$work/rootfs/." "$mnt/"
mkdir -p "$mnt/usr/local/rust" "$mnt/usr/local/cargo"
tar -C "$toolchain" --exclude=./share/doc -cf - . | tar -C "$mnt/usr/local/rust" -xf -
buildah "${store[@]}" umount "$ctr" >/dev/null
buildah "${store[@]}" config \
  --env PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env CARGO_HOME=/usr/local/cargo \
  --label org.opencontainers.image.description="Debian bookworm minbase with gcc and Rust $rustc_version" \
  "$ctr"
buildah "${store[@]}" commit --rm "$ctr" "$image" >&2
ctr=""
echo "$image"
