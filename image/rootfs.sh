#!/usr/bin/env bash
# Lays out the runtime image's root filesystem around one `governor` binary:
#   /usr/local/bin/governor    the binary, symbols stripped (objcopy --strip-all)
#   the shared libraries it loads, at the paths `ldd` names (glibc's libc, libm,
#   ld-linux; libgcc_s), with their Debian copyright files
#   /etc/passwd, /etc/group    root and the non-root user 65532 (nonroot)
#   /etc/nsswitch.conf         files, then DNS
#   /etc/ssl/certs/ca-certificates.crt   the Mozilla roots of Debian's ca-certificates
#                              (read by kube and reqwest through rustls), never the
#                              build machine's local additions (a proxy's CA)
#   /tmp                       empty, mode 1777
# Both Dockerfile targets copy this folder whole (the build stage runs this
# script in the builder; image/build.sh --prebuilt runs it on the host), so the
# two images cannot drift apart.
# Usage: image/rootfs.sh BINARY OUTDIR   (OUTDIR must not exist or be empty)
set -euo pipefail

fail() { printf 'image/rootfs.sh: %s\n' "$*" >&2; exit 1; }

[ $# -eq 2 ] || fail "usage: image/rootfs.sh BINARY OUTDIR"
bin=$1 out=$2
[ -f "$bin" ] && [ -x "$bin" ] || fail "BINARY $bin: not an executable file"
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  fail "OUTDIR $out: exists and is not empty"
fi
command -v objcopy >/dev/null || fail "objcopy not found (Debian package binutils)"
certs=/etc/ssl/certs/ca-certificates.crt
mozilla=/usr/share/ca-certificates/mozilla
compgen -G "$mozilla/*.crt" >/dev/null || fail "$mozilla: no certificates (Debian package ca-certificates)"

mkdir -p "$out/usr/local/bin" "$out/etc/ssl/certs"
objcopy --strip-all "$bin" "$out/usr/local/bin/governor"
chmod 0755 "$out/usr/local/bin/governor"

# ldd prints "name => /path (addr)" for each library and "/path (addr)" for the
# loader; a static binary has none.
libs=()
if ldd_out=$(ldd "$bin" 2>&1); then
  while read -r first arrow path _; do
    if [ "$arrow" = "=>" ]; then
      case $path in /*) libs+=("$path") ;; *) fail "ldd: $first not found" ;; esac
    elif [[ $first == /* ]]; then
      libs+=("$first")
    fi
  done <<<"$ldd_out"
elif ! grep -q "not a dynamic executable" <<<"$ldd_out"; then
  fail "ldd $bin: $ldd_out"
fi

for lib in "${libs[@]}"; do
  mkdir -p "$out$(dirname "$lib")"
  cp -L "$lib" "$out$lib"
  chmod 0755 "$out$lib"
  # The libraries' licences travel with them (LGPL for glibc).
  if command -v dpkg-query >/dev/null && pkg=$(dpkg-query -S "$lib" 2>/dev/null); then
    pkg=${pkg%%:*}
    if [ -f "/usr/share/doc/$pkg/copyright" ]; then
      mkdir -p "$out/usr/share/doc/$pkg"
      cp "/usr/share/doc/$pkg/copyright" "$out/usr/share/doc/$pkg/copyright"
    fi
  fi
done

cat "$mozilla"/*.crt >"$out$certs"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
  'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$out/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$out/etc/group"
printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$out/etc/nsswitch.conf"
chmod 0644 "$out/etc/passwd" "$out/etc/group" "$out/etc/nsswitch.conf" "$out$certs"
mkdir -p -m 1777 "$out/tmp"
chmod 1777 "$out/tmp"
