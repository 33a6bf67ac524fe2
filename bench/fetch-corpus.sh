#!/usr/bin/env bash
# The benchmark corpus: the Linux kernel documentation sources from Debian's linux-doc-6.1
# package (~3,200 reStructuredText files as .rst.txt, ~31 MB, ~3.1 M words, GPL-2), the same
# package as ../shared/scripts/fetch-linux-doc.sh uses, keeping only the text sources.
# Usage: bench/fetch-corpus.sh [DEST]   (default bench/data/linux-doc; needs apt-get and dpkg-deb)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-$here/data/linux-doc}
if [[ -d $dest ]] && [[ -n $(find "$dest" -name '*.rst.txt' -print -quit) ]]; then
    echo "corpus already in $dest"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! (cd "$tmp" && apt-get download linux-doc-6.1 >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$tmp" && apt-get download linux-doc-6.1 >/dev/null)
fi
dpkg-deb -x "$tmp"/linux-doc-6.1_*.deb "$tmp/x"
src="$tmp/x/usr/share/doc/linux-doc-6.1/html/_sources"
mkdir -p "$dest"
(cd "$src" && find . -name '*.rst.txt' -print0 | tar --null -cf - -T -) | tar -xf - -C "$dest"
ls "$tmp"/linux-doc-6.1_*.deb | xargs -n1 basename > "$dest/.package"
echo "corpus: $(find "$dest" -name '*.rst.txt' | wc -l) files, $(du -sh --apparent-size "$dest" | cut -f1) in $dest"
