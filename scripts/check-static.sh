#!/usr/bin/env bash
# check-static.sh BIN: fail unless BIN is a static executable with no glibc
# NSS symbols (which would make it load shared libraries at run time).
set -euo pipefail
bin=${1:?usage: check-static.sh BIN}
if ldd "$bin" >/dev/null 2>&1; then
	echo "check-static: $bin is dynamically linked:" >&2
	ldd "$bin" >&2
	exit 1
fi
file "$bin" | grep -q 'statically linked' || { echo "check-static: $bin: $(file -b "$bin")" >&2; exit 1; }
if strings "$bin" | grep -qE '^(_nss_|__nss_database_lookup)'; then
	echo "check-static: $bin references glibc NSS; build with -tags netgo,osusergo" >&2
	exit 1
fi
echo "check-static: $bin is static ($(du -h "$bin" | cut -f1))"
