#!/usr/bin/env bash
# Builds, into build-bpf/ (node-gyp rebuild wipes build/, and intermediates stay out of src/):
#   1. the vendored libbpf as a position-independent static archive, for the addon;
#   2. vmlinux.h from this machine's BTF (CO-RE relocates the object onto whatever kernel
#      runs it, so the build machine only needs BTF; DROPTRACE_VMLINUX_BTF overrides the file);
#   3. the BPF object and its skeleton header, which embeds the object in the addon.
# Quiet unless VERBOSE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-bpf
mkdir -p "$out"
btf=${DROPTRACE_VMLINUX_BTF:-/sys/kernel/btf/vmlinux}
for tool in clang bpftool make cc; do
  command -v "$tool" >/dev/null || { echo "build-bpf: '$tool' not found (apt-get install -y clang bpftool make gcc)" >&2; exit 1; }
done
[ -r "$btf" ] || { echo "build-bpf: no BTF at $btf (kernel needs CONFIG_DEBUG_INFO_BTF, or set DROPTRACE_VMLINUX_BTF)" >&2; exit 1; }
[ -r /usr/include/gelf.h ] || { echo "build-bpf: libelf headers missing (apt-get install -y libelf-dev zlib1g-dev)" >&2; exit 1; }

run() { if [ -n "${VERBOSE:-}" ]; then "$@"; else "$@" >/dev/null; fi; }

if [ ! -f "$out/libbpf/libbpf.a" ]; then
  mkdir -p "$out/libbpf/obj"
  run make -C native/vendor/libbpf/src -j"$(nproc)" BUILD_STATIC_ONLY=1 \
    OBJDIR="$PWD/$out/libbpf/obj" DESTDIR="$PWD/$out/libbpf/root" \
    PREFIX= LIBDIR=/lib INCLUDEDIR=/include UAPIDIR=/include \
    EXTRA_CFLAGS="-fPIC -g -O2" install install_uapi_headers
  cp "$out/libbpf/root/lib/libbpf.a" "$out/libbpf/libbpf.a"
fi
inc="$PWD/$out/libbpf/root/include"

if [ ! -s "$out/vmlinux.h" ] || [ "$btf" -nt "$out/vmlinux.h" ]; then
  bpftool btf dump file "$btf" format c > "$out/vmlinux.h.tmp" && mv "$out/vmlinux.h.tmp" "$out/vmlinux.h"
fi
arch=$(uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/' -e 's/ppc64le/powerpc/' -e 's/s390x/s390/')
clang -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${arch} \
  -I "$out" -I "$inc" -I native/include -I native/bpf \
  -c native/bpf/droptrace.bpf.c -o "$out/droptrace.tmp.o"
# gen object links and strips DWARF: the skeleton embeds only what loads
bpftool gen object "$out/droptrace.bpf.o" "$out/droptrace.tmp.o"
bpftool gen skeleton "$out/droptrace.bpf.o" name droptrace_bpf > "$out/droptrace.skel.h"
[ -n "${VERBOSE:-}" ] && echo "build-bpf: $out/droptrace.skel.h ($(stat -c %s "$out/droptrace.bpf.o") byte object)"
exit 0
