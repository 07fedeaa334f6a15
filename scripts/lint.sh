#!/bin/sh
# make lint: banned functions, then cppcheck (when installed) on src/.
set -u
cd "$(dirname "$0")/.."
status=0
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atof|mktemp|tmpnam)\s*\('
hits=$(grep -nE "$banned" src/*.c src/*/*.c bench/*.c | grep -v 'lint: ok' || true)
if [ -n "$hits" ]; then
  echo "lint: banned functions (use snprintf/util_fmt, util_parse_i64, memcpy with a checked size):"
  echo "$hits"
  status=1
fi
# layering: includes point down, pure modules do no I/O; then the rule's own self-test
/usr/bin/python3 scripts/lint_layers.py || status=1
/usr/bin/python3 scripts/lint_layers.py --self-test || status=1
if command -v cppcheck >/dev/null 2>&1; then
  cppcheck --quiet --error-exitcode=1 --enable=warning,portability --inline-suppr \
    --std=c11 -D_GNU_SOURCE -I src -I /usr/include/cjson --suppress=missingIncludeSystem \
    src/ || status=1
else
  echo "lint: cppcheck not installed; skipped (apt-get install cppcheck)"
fi
if command -v clang-format >/dev/null 2>&1; then
  # shellcheck disable=SC2046
  clang-format --dry-run --Werror src/*.c src/*/*.c src/*/*.h bench/*.c fuzz/*.c tests/unit/*.c $(ls tests/unit/helpers/*.[ch] 2>/dev/null) tests/tools/*.c 2>/dev/null \
    || { echo "lint: not clang-formatted (run make format)"; status=1; }
else
  echo "lint: clang-format not installed; format check skipped"
fi
[ "$status" -eq 0 ] && echo "lint: clean"
exit "$status"
