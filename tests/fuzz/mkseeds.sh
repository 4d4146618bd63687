#!/bin/sh
# Seeds for the fuzz targets: the stdin of every hostile-input case (tests/corpus) and its CNI_ARGS,
# with the placeholders filled in; `make fuzz` starts from these plus the saved corpus.
set -eu
cd "$(dirname "$0")/../.."
out=${1:-build-fuzz/seeds}
mkdir -p "$out/conf" "$out/args"
n=0
for f in tests/corpus/*/*.case tests/corpus/*/*/*.case; do
	[ -f "$f" ] || continue
	grep -q '^repeat:' "$f" && continue
	n=$((n + 1))
	sed '1,/^---$/d' "$f" | sed 's#@[A-Z]*@#/tmp/fuzz#g' | head -c 8192 >"$out/conf/corpus-$n"
	sed -n 's/^env: CNI_ARGS=//p;/^---$/q' "$f" >"$out/args/corpus-$n"
	[ -s "$out/args/corpus-$n" ] || rm -f "$out/args/corpus-$n"
done
cp tests/fuzz/seeds/conf/* "$out/conf/" 2>/dev/null || true
cp tests/fuzz/seeds/args/* "$out/args/" 2>/dev/null || true
