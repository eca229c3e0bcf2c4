#!/usr/bin/env bash
# headers.sh SRCTREE BUILDDIR SRCARCH DEST OBJTOOL
#
# Assemble in DEST a standalone tree to build out-of-tree modules against (`make -C DEST M=...`), the
# way distributions' linux-headers packages do: the source tree's Makefiles, include/, scripts/ and
# the architecture's include and scripts directories, then over them what the O= build produced
# (.config, Module.symvers, generated headers, host programs, module.lds, objtool). DEST is used as
# source and object tree at once, so it must not exist yet and links nothing outside itself.
# The host programs in scripts/ run on the build host's architecture only. OBJTOOL is "true" when the
# configuration has CONFIG_OBJTOOL=y (read by labkit.cluster.kconfig), "false" otherwise.
set -euo pipefail

if [ $# -ne 5 ] || { [ "$5" != true ] && [ "$5" != false ]; }; then
    echo "usage: $0 SRCTREE BUILDDIR SRCARCH DEST true|false" >&2
    exit 2
fi
src=$1 build=$2 srcarch=$3 dest=$4 objtool=$5

fail() {
    echo "headers.sh: $*" >&2
    exit 1
}

[ -f "$src/Makefile" ] || fail "$src is not a kernel source tree"
[ -d "$src/arch/$srcarch" ] || fail "$src has no arch/$srcarch"
for needed in .config Module.symvers include/generated/autoconf.h include/config/kernel.release scripts/mod/modpost; do
    [ -e "$build/$needed" ] || fail "$build/$needed is missing: build the kernel with the modules target and CONFIG_MODULES=y"
done
if $objtool; then
    [ -x "$build/tools/objtool/objtool" ] || fail "CONFIG_OBJTOOL=y but $build/tools/objtool/objtool was not built"
fi
[ ! -e "$dest" ] || fail "$dest exists already"
mkdir -p "$dest"
dest=$(cd "$dest" && pwd -P)

# Copy the paths read (NUL-separated) relative to $1 into $dest, keeping modes, times and relative links.
copy_from() {
    (cd "$1" && tar -c -f - --no-recursion --null --files-from=-) | (cd "$dest" && tar -x -f -)
}

# From the source tree. Kbuild.platforms/Platform files are read by some arch Makefiles (mips).
(
    cd "$src"
    find . "arch/$srcarch" -maxdepth 1 -type f -name 'Makefile*' -print0
    find include scripts -print0
    find "arch/$srcarch" -type f \( -name Kbuild.platforms -o -name Platform \) -print0
    find "arch/$srcarch" -type d \( -name include -o -name scripts \) -prune -exec find {} -print0 \;
) | copy_from "$src"

# User-mode Linux reads its host architecture's files too (arch/um/Makefile: HEADER_ARCH, x86 on the
# x86 hosts it runs on): arch/x86/Makefile.um, its include/ and the headers under arch/x86/um.
header_arch=""
if [ "$srcarch" = um ]; then
    header_arch=x86
    [ -f "$src/arch/$header_arch/Makefile.um" ] || fail "$src has no arch/$header_arch/Makefile.um"
    (
        cd "$src"
        printf '%s\0' "arch/$header_arch/Makefile.um"
        find "arch/$header_arch/include" -print0
        find "arch/$header_arch/um" \( -name '*.h' -o -path "arch/$header_arch/um/shared*" \) -print0
    ) | copy_from "$src"
fi

# From the build directory, over the source files. Its top Makefile is only a wrapper that points at
# the source tree: never copy it. Object files and .cmd dependency records are of no use here.
(
    cd "$build"
    printf '%s\0' .config Module.symvers
    find include "arch/$srcarch/include" scripts ! -name '*.o' ! -name '.*.cmd' -print0
    if [ -n "$header_arch" ] && [ -d "arch/$header_arch/include" ]; then
        find "arch/$header_arch/include" ! -name '*.o' ! -name '.*.cmd' -print0
    fi
    if $objtool; then printf '%s\0' tools tools/objtool tools/objtool/objtool; fi
) | copy_from "$build"

# Links that lead nowhere inside DEST (such as scripts/dtc/include-prefixes/* into arch/*/boot/dts)
# are dropped; a link that resolves outside DEST would tie the tree to this host, so it is an error.
find "$dest" -type l | while IFS= read -r link; do
    target=$(readlink -f "$link" || true)
    case "$target" in
        "$dest"/*) [ -e "$target" ] || rm -f "$link" ;;
        *) if [ -e "$target" ]; then fail "$link leads out of the tree, to $target"; else rm -f "$link"; fi ;;
    esac
done

echo "headers for $(cat "$dest/include/config/kernel.release") in $dest"
