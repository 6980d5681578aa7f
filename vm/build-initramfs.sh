#!/usr/bin/env bash
# build-initramfs.sh KERNEL_DIR AGENT RUNNER OUT - the guest's initramfs
# (newc cpio): the static airlock-agent as /init (src/agent/guest.c), the
# kernel modules numbered so each one's depends= load first, the runner.
set -euo pipefail
kdir=$1 agent=$2 runner=$3 out=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{dev,proc,sys,img,newroot,scratch,modules,opt/airlock}
install -m 0755 "$agent" "$tmp/init"
install -m 0444 "$runner" "$tmp/opt/airlock/airlock_runner.py"
# the R and JavaScript runners sit next to the Python one (src/agent/lang.c)
for f in airlock_runner.R airlock_runner.mjs; do
  if [ -f "$(dirname "$runner")/$f" ]; then install -m 0444 "$(dirname "$runner")/$f" "$tmp/opt/airlock/$f"; fi
done
# topological order from each module's modinfo depends= line
declare -A deps done_
for f in "$kdir"/modules/*.ko; do
  m=$(basename "$f" .ko)
  deps[$m]=$(strings "$f" | sed -n 's/^depends=//p' | head -1 | tr ',' ' ')
done
n=0
visit() {
  local m=$1 d
  [ -n "${done_[$m]:-}" ] && return
  for d in ${deps[$m]}; do
    [ -n "${deps[$d]+x}" ] || { echo "build-initramfs: $m needs $d, which is not fetched" >&2; exit 1; }
    visit "$d"
  done
  done_[$m]=1
  n=$((n + 1))
  cp "$kdir/modules/$m.ko" "$tmp/modules/$(printf %02d $n)-$m.ko"
}
for m in $(printf '%s\n' "${!deps[@]}" | sort); do visit "$m"; done
(cd "$tmp" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) > "$out.tmp"
mv "$out.tmp" "$out"
