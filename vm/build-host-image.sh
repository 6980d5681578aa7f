#!/usr/bin/env bash
# build-host-image.sh OUT PKG... - the vm backend's root image for the `host`
# template: the installed files of the given Debian packages and everything
# they depend on (the same packages the jail's host template runs from the
# host's /usr), plus the /etc files the sandbox binds in (sandbox_etc.c's
# host files), as one read-only erofs image.
#
# The jail shows the whole host /usr; a VM disk of all of it (9 GB on a
# developer machine) would be minutes to build for files no sandbox asks
# for, so the image holds the package closure only (~900 MB, ~470 MB lz4).
# It is cached by the hash of its inputs (package names and versions, the
# /etc files, this script): OUT/host-<hash>.erofs, with OUT/host.erofs
# pointing at the current one. A package upgrade makes a new image.
set -euo pipefail
out=$1; shift
mkdir -p "$out"
cands=$(apt-cache depends --recurse --installed --no-recommends --no-suggests --no-conflicts --no-breaks \
         --no-replaces --no-enhances "$@" | grep -v '^ ' | grep -v '<' | sort -u)
# alternatives apt-cache names but that are not installed here drop out
pkgs=$(dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\n' $cands 2>/dev/null | awk '$2 ~ /^ii/ {print $1}' || true)
etc_files="ld.so.cache ld.so.conf ld.so.conf.d alternatives matplotlibrc fonts mime.types R"
hash=$( { dpkg-query -W -f='${Package} ${Version}\n' $pkgs;
          for f in $etc_files; do [ -e "/etc/$f" ] && tar -C /etc -cf - --mtime=@0 --sort=name "$f" 2>/dev/null; done;
          find /usr -lname '/etc/alternatives/*' 2>/dev/null | LC_ALL=C sort;
          cat "$0"; } | sha256sum | cut -c1-16)
img="$out/host-$hash.erofs"
if [ -f "$img" ]; then ln -sfn "host-$hash.erofs" "$out/host.erofs"; exit 0; fi
echo "build-host-image: $(echo $pkgs | wc -w) packages -> $img"
tmp=$(mktemp -d "$out/stage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# dpkg lists pre-merged-/usr paths (/bin/bash, /lib/x86_64-linux-gnu/...):
# the image keeps only the /usr side, and the guest links /bin etc. to it
for p in $pkgs; do dpkg -L "$p" 2>/dev/null || true; done |
  sed -e 's|^/bin/|/usr/bin/|' -e 's|^/sbin/|/usr/sbin/|' -e 's|^/lib/|/usr/lib/|' -e 's|^/lib64/|/usr/lib64/|' |
  grep '^/usr/' | LC_ALL=C sort -u |
  while IFS= read -r f; do [ -f "$f" ] || [ -L "$f" ] && printf '%s\n' "${f#/}"; done > "$tmp.list"
# update-alternatives' links in /usr (libblas.so.3 -> /etc/alternatives/...)
# belong to no package's file list; /etc/alternatives is copied below
find /usr -lname '/etc/alternatives/*' -printf '%P\n' 2>/dev/null | sed 's|^|usr/|' >> "$tmp.list"
mkdir -p "$tmp/root/etc"
tar -C / -cf - --no-recursion -T "$tmp.list" | tar -C "$tmp/root" -xf -
rm -f "$tmp.list"
for f in $etc_files; do [ -e "/etc/$f" ] && cp -a "/etc/$f" "$tmp/root/etc/"; done
mkfs.erofs --quiet -zlz4 "$img.tmp" "$tmp/root"
mv "$img.tmp" "$img"
ln -sfn "host-$hash.erofs" "$out/host.erofs"
# older images of this directory are superseded
find "$out" -maxdepth 1 -name 'host-*.erofs' ! -name "host-$hash.erofs" -delete
