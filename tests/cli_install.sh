#!/usr/bin/env bash
# `make install` and `make uninstall`, and libselfsup used as an installed
# library: installs into a temporary DESTDIR, builds tests/install_example.c
# outside the tree with `pkg-config --cflags --libs selfsup` (the staged
# selfsup.pc with its prefix adjusted), shared and static, runs both (a
# tokenizer trained, a sentence encoded, shards, a tiny decoder pretrained
# and a prompt continued) and checks them against the installed CLI; then
# uninstalls and checks that exactly the installed files went.
set -u
source "$(dirname "$0")/tap.sh"
tap_plan 11
tap_needs tinyshakespeare input.txt cli-install
export OMP_NUM_THREADS=1
SRC=$(pwd)
B=$(dirname "$SS")
PREFIX=/usr/local
D=$TMP/stage
P=$D$PREFIX
# make from inside `make check`: a make of its own, not a job of the caller's
MK=(env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS make --no-print-directory B="$B")
version=$(sed -n 's/^#define SS_VERSION_\(MAJOR\|MINOR\|PATCH\) *\([0-9]*\).*/\2/p' include/selfsup/version.h |
  paste -sd.)
major=${version%%.*}

# ---- install ----
mkdir -p "$P/lib" && echo "not selfsup's" >"$P/lib/other.txt" # a file install did not write
"${MK[@]}" install DESTDIR="$D" PREFIX=$PREFIX >"$TMP/install.log" 2>&1
rc=$?
hdrs=$(cd include/selfsup && ls -- *.h *.def | sort)
install_ok() {
  [ $rc = 0 ] && [ -x "$P/bin/selfsup" ] && [ -f "$P/lib/libselfsup.a" ] && [ -f "$P/lib/libselfsup.so.$version" ] &&
    [ "$(readlink "$P/lib/libselfsup.so.$major")" = "libselfsup.so.$version" ] &&
    [ "$(readlink "$P/lib/libselfsup.so")" = "libselfsup.so.$major" ] && [ -f "$P/lib/pkgconfig/selfsup.pc" ] &&
    [ "$(cd "$P/include/selfsup" && ls | sort)" = "$hdrs" ] &&
    ! grep -vE '^(build|install): ' "$TMP/install.log" # quiet: one line per stage
}
if install_ok; then ok "make install DESTDIR=... writes the CLI, libselfsup.a, libselfsup.so.$version and its links, the $(echo "$hdrs" | wc -l) public headers and selfsup.pc (quietly)"
else notok "make install DESTDIR=... writes the CLI, libselfsup.a, libselfsup.so.$version and its links, the public headers and selfsup.pc (quietly)" \
  "$(tail -5 "$TMP/install.log")" "$(cd "$D" && find . | sort | head -20)"; fi

shlib_ok() {
  readelf -d "$P/lib/libselfsup.so.$version" | grep -q "SONAME.*\[libselfsup.so.$major\]" &&
    [ -n "$(nm -D --defined-only "$P/lib/libselfsup.so.$version" | awk '$3 ~ /^ss_/')" ] &&
    [ -z "$(nm -D --defined-only "$P/lib/libselfsup.so.$version" | awk '$3 !~ /^ss_/ && $2 ~ /[TDBR]/')" ] &&
    readelf -d "$P/lib/libselfsup.so.$version" | grep -q 'NEEDED.*libopenblas' &&
    readelf -d "$P/lib/libselfsup.so.$version" | grep -q 'RUNPATH.*openblas-openmp'
}
check "the shared library: soname libselfsup.so.$major, exports only ss_* symbols, records OpenBLAS (OpenMP build)" shlib_ok

# ---- pkg-config on the staged selfsup.pc, prefix adjusted ----
mkdir -p "$TMP/pc"
sed "s|^prefix=.*|prefix=$P|" "$P/lib/pkgconfig/selfsup.pc" >"$TMP/pc/selfsup.pc"
export PKG_CONFIG_PATH=$TMP/pc
cflags=$(pkg-config --cflags selfsup) libs=$(pkg-config --libs selfsup) slibs=$(pkg-config --static --libs selfsup)
echo "# cflags: $cflags"
echo "# libs: $libs"
echo "# static libs: $slibs"
pc_ok() {
  grep -q "^prefix=$PREFIX\$" "$P/lib/pkgconfig/selfsup.pc" && [ "$(pkg-config --modversion selfsup)" = "$version" ] &&
    [[ " $cflags " == *" -I$P/include "* ]] && [[ " $libs " == *" -L$P/lib -lselfsup "* ]] &&
    for l in -lopenblas -ldnnl -lutf8proc -lzstd -lcjson -lm -fopenmp; do [[ " $slibs " == *" $l "* ]] || return 1; done
}
check "selfsup.pc: version $version, prefix $PREFIX; --static adds openblas, dnnl, utf8proc, zstd, cjson, -lm, -fopenmp" pc_ok

# ---- the example, built outside the tree, shared and static ----
X=$TMP/example
mkdir -p "$X" && cp tests/install_example.c "$X/example.c" && cd "$X" || bail "cannot make $X"
# shellcheck disable=SC2086
"${CC:-cc}" -std=c11 -pedantic -Wall -Wextra -Werror -o example_shared example.c $cflags $libs 2>"$X/cc_shared.log"
r1=$?
# shellcheck disable=SC2086 # libselfsup.a, not the .so beside it: -l:libselfsup.a
"${CC:-cc}" -std=c11 -pedantic -Wall -Wextra -Werror -o example_static example.c $cflags \
  $(printf '%s' "$slibs" | sed 's/-lselfsup\b/-l:libselfsup.a/') 2>"$X/cc_static.log"
r2=$?
built_ok() {
  [ $r1 = 0 ] && [ $r2 = 0 ] && readelf -d example_shared | grep -q "NEEDED.*\[libselfsup.so.$major\]" &&
    ! readelf -d example_static | grep -q 'NEEDED.*libselfsup'
}
if built_ok; then ok "the example builds with pkg-config (-std=c11 -pedantic -Werror): shared (needs libselfsup.so.$major) and static"
else notok "the example builds with pkg-config (-std=c11 -pedantic -Werror): shared (needs libselfsup.so.$major) and static" \
  "$(head -5 "$X/cc_shared.log" "$X/cc_static.log")"; fi

head -c 200000 "$MIRROR/tinyshakespeare/input.txt" >"$X/text.txt"
SENT="To be, or not to be: that is the question."
LD_LIBRARY_PATH=$P/lib ./example_shared text.txt w_shared "ROMEO:" >out_shared 2>err_shared
s1=$?
./example_static text.txt w_static "ROMEO:" >out_static 2>err_static
s2=$?
for kind in shared static; do sed "s/^/# $kind: /" "err_$kind"; done
ran_ok() { # KIND STATUS: every step reported, the sentence round-trips, the loss fell
  local e=err_$1 first last
  [ "$2" = 0 ] && grep -q '^tokenizer: 400 tokens' "$e" && grep -q '^decode: the same text$' "$e" &&
    grep -q '^generate: 24 new tokens' "$e" || return 1
  first=$(sed -n 's/^pretrain: step .*loss //p' "$e" | head -1)
  last=$(sed -n 's/^pretrain: step .*loss //p' "$e" | tail -1)
  awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a - 0.5) }'
}
check "both programs train a tokenizer, encode and decode, prepare shards, pretrain (loss falls) and generate" \
  bash -c "$(declare -f ran_ok); cd '$X' && ran_ok shared $s1 && ran_ok static $s2"

# against the installed CLI: the same tokenizer file, the same ids, the same greedy text
CLI=$P/bin/selfsup
cli_ok() {
  local kind
  cmp -s w_shared/tokenizer.json w_static/tokenizer.json || return 1
  for kind in shared static; do
    [ "$(sed -n 's/^encode: //p' "err_$kind")" = \
      "$("$CLI" tokenizer encode --tokenizer "w_$kind/tokenizer.json" --text "$SENT")" ] || return 1
    "$CLI" generate -m "w_$kind/run" -p "ROMEO:" --temperature 0 -n 24 --threads 1 >"cli_$kind" 2>/dev/null &&
      [ -s "out_$kind" ] && cmp -s "out_$kind" "cli_$kind" || return 1
  done
}
if cli_ok; then ok "the installed CLI agrees: same tokenizer.json from both, same ids, and 'selfsup generate --temperature 0' on each run prints the programs' text"
else notok "the installed CLI agrees: same tokenizer.json from both, same ids, and 'selfsup generate --temperature 0' on each run prints the programs' text" \
  "program: $(head -c 120 out_shared | tr '\n' '|')" "CLI:     $(head -c 120 cli_shared 2>/dev/null | tr '\n' '|')"; fi

# versions: the headers', the library's (ss_version) and `selfsup --version`
cli_version=$("$CLI" --version | awk '{ print $2 }')
echo "# selfsup --version: $("$CLI" --version)"
check "ss_version() of both programs = SS_VERSION_STRING = 'selfsup --version' = $version" \
  bash -c "[ '$cli_version' = '$version' ] && grep -qx 'version: headers $version, library $version' err_shared &&
    grep -qx 'version: headers $version, library $version' err_static"

# ss_version() is the library's, not the headers': the shared program run
# against another libselfsup.so.MAJOR (a stub reporting 9.8.7) says so
mkdir -p stub
printf 'const char *ss_version(void) { return "9.8.7"; }\n' >stub/v.c
printf '#include <stdio.h>\n#include <selfsup/version.h>\nint main(void) { printf("%%s %%s\\n", SS_VERSION_STRING, ss_version()); return 0; }\n' >ver.c
# shellcheck disable=SC2086
"${CC:-cc}" -shared -fPIC -Wl,-soname,libselfsup.so.$major -o "stub/libselfsup.so.$major" stub/v.c &&
  "${CC:-cc}" -o ver ver.c $cflags $libs && real=$(LD_LIBRARY_PATH=$P/lib ./ver) && other=$(LD_LIBRARY_PATH=$X/stub ./ver)
echo "# a program built against the headers: '$real' with the installed library, '${other:-}' with the stub"
check "ss_version() reports the library the program runs with (the stub's 9.8.7 beside headers $version)" \
  bash -c "[ '$real' = '$version $version' ] && [ '${other:-}' = '$version 9.8.7' ]"

# the shared program runs on the installed library, not one elsewhere
check "the shared program loads libselfsup.so.$major from the install (LD_LIBRARY_PATH)" \
  bash -c "LD_LIBRARY_PATH='$P/lib' ldd ./example_shared | grep -q 'libselfsup.so.$major => $P/lib/libselfsup.so.$major'"

# ---- uninstall ----
cd "$SRC" || bail "cannot return to $SRC"
"${MK[@]}" uninstall DESTDIR="$D" PREFIX=$PREFIX >"$TMP/uninstall.log" 2>&1
rc=$?
left=$(cd "$D" && find . \( -type f -o -type l \) | sort)
check "make uninstall removes every file install wrote (and include/selfsup/), keeps a file it did not write" \
  bash -c "[ $rc = 0 ] && [ '$left' = './usr/local/lib/other.txt' ] && [ ! -e '$P/include/selfsup' ]"
[ "$left" = ./usr/local/lib/other.txt ] || printf '# left: %s\n' $left
"${MK[@]}" uninstall DESTDIR="$D" PREFIX=$PREFIX >"$TMP/uninstall2.log" 2>&1
check "make uninstall a second time (nothing left to remove) succeeds" bash -c "[ $? = 0 ]"
