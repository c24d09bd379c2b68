#!/bin/sh
# Byte-identity check of the rewriter (throwaway tooling for refactors that
# must not change its output; not part of the CMake build).
#   scripts/rewrite_corpus/run.sh BUILD_DIR OUT_FILE
# extracts the corpus from tests/ (extract.py), builds dump.c against
# BUILD_DIR's static libraries and writes every result to OUT_FILE. Compare
# two builds with cmp.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "$1" && pwd)
out=$2
work=$build/rewrite_corpus
mkdir -p "$work"
/usr/bin/python3 "$here/extract.py" "$repo" "$work/in"
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -I"$repo/src" -o "$work/dump" "$here/dump.c" \
    "$build/libepoch_rewrite.a" "$build/libepoch_branch.a" "$build/libepoch_common.a" \
    -ljson-c -lpg_query -lxxhash -lpthread \
    $(grep -q 'EPOCH_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && echo -fsanitize=address,undefined || true)
"$work/dump" "$work/in" > "$out"
