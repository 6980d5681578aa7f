#!/usr/bin/env bash
# fetch-kernel.sh OUT - the vm backend's guest kernel: Debian's cloud kernel
# (linux-image-cloud-amd64), downloaded with apt-get download and unpacked
# into OUT, never installed into the host's /boot. OUT/kernel.version records
# the package version; a newer one in the archive (a security update, after
# apt-get update) is fetched by the next run, an unchanged one is kept.
#
#   OUT/vmlinuz            the kernel
#   OUT/modules/           the .ko files the guest agent loads (build-initramfs.sh)
#   OUT/kernel.version     "linux-image-6.1.0-NN-cloud-amd64 6.1.x-y"
set -euo pipefail
out=$1
meta=linux-image-cloud-amd64
# the metapackage depends on exactly one versioned image package
pkg=$(apt-cache depends "$meta" | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$pkg" ] || { echo "fetch-kernel: apt-cache finds no $meta (is Debian's archive in sources.list?)" >&2; exit 1; }
ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
want="$pkg $ver"
if [ -f "$out/kernel.version" ] && [ "$(cat "$out/kernel.version")" = "$want" ] && [ -f "$out/vmlinuz" ]; then
  exit 0
fi
echo "fetch-kernel: $want"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt-get download drops privileges to _apt, which cannot write a root-owned dir
chmod 0777 "$tmp"
(cd "$tmp" && apt-get download -q "$pkg=$ver" 2>&1 | grep -v 'unsandboxed' >&2 || true)
deb=$(ls "$tmp"/*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || { echo "fetch-kernel: apt-get download $pkg=$ver gave no .deb" >&2; exit 1; }
dpkg-deb -x "$deb" "$tmp/x"
rm -rf "$out.new"
mkdir -p "$out.new/modules"
cp "$tmp"/x/boot/vmlinuz-* "$out.new/vmlinuz"
kdir=$(ls -d "$tmp"/x/lib/modules/*)
# what the guest needs: virtio over mmio (microvm), the serial port, the
# root disk and its filesystem, the entropy device
for m in virtio_ring virtio virtio_mmio virtio_console virtio_blk virtio-rng libcrc32c erofs; do
  f=$(find "$kdir" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
  [ -n "$f" ] || { echo "fetch-kernel: $pkg has no module $m" >&2; exit 1; }
  case $f in *.xz) xz -dc "$f" > "$out.new/modules/$m.ko" ;; *) cp "$f" "$out.new/modules/$m.ko" ;; esac
done
echo "$want" > "$out.new/kernel.version"
rm -rf "$out"
mv "$out.new" "$out"
