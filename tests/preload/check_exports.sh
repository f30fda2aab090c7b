#!/usr/bin/env bash
# Checks the dynamic symbols libslabpool-preload.so defines against expected_exports.txt: every
# replaced allocation function present (a partial override lets glibc-heap pointers reach our
# free), nothing else exported (the core must stay private), and no static TLS model surprises.
# Usage: check_exports.sh LIBRARY EXPECTED_LIST
set -euo pipefail
library=$1
expected=$2
actual=$(nm -D --defined-only "$library" | awk '{print $3}' | sed 's/@.*//' | LC_ALL=C sort -u)
missing=$(LC_ALL=C comm -23 <(LC_ALL=C sort -u "$expected") <(echo "$actual"))
extra=$(LC_ALL=C comm -13 <(LC_ALL=C sort -u "$expected") <(echo "$actual"))
status=0
if [ -n "$missing" ]; then
  echo "missing exports:"; echo "$missing" | sed 's/^/  /'; status=1
fi
if [ -n "$extra" ]; then
  echo "unexpected exports:"; echo "$extra" | sed 's/^/  /'; status=1
fi
# The heap pointer must be initial-exec TLS: a general-dynamic access could call malloc.
if ! readelf -d "$library" | grep -q STATIC_TLS; then
  echo "no STATIC_TLS flag: TLS is not initial-exec"; status=1
fi
if [ "$status" = 0 ]; then
  echo "exports: $(echo "$actual" | wc -l) symbols, as expected"
  echo "1 passed, 0 failed"
else
  echo "0 passed, 1 failed"
fi
exit $status
