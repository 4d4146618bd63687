#!/usr/bin/env bash
# make lint: every C file of ours against .clang-format, and cppcheck over the sources. Prints TAP
# (the test command runs it as a job); exits non-zero when either finds something.
#   scripts/lint.sh           check
#   scripts/lint.sh --fix     rewrite the files through clang-format (make format)
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files 'agent/*.[ch]' 'common/*.[ch]' 'plugins/*.[ch]' 'tools/*.[ch]' 'tests/*.[ch]' 2>/dev/null ||
	find agent common plugins tools tests -name '*.[ch]')
if [[ ${1:-} == --fix ]]; then
	exec clang-format -i "${files[@]}"
fi
fail=0
echo 1..2
if out=$(clang-format --dry-run --Werror "${files[@]}" 2>&1); then
	echo "ok 1 clang-format: ${#files[@]} C files follow .clang-format"
else
	echo "not ok 1 clang-format: files differ from .clang-format (make format rewrites them)"
	sed 's/^/# /' <<<"$out" | head -40
	fail=1
fi
# warnings, performance and portability; style findings are not errors
if out=$(cppcheck -q --enable=warning,performance,portability --inline-suppr --error-exitcode=1 \
	--suppress=missingIncludeSystem -I common -I third_party -I plugins/ipam/host-local -j2 agent common plugins tools 2>&1); then
	echo "ok 2 cppcheck: no warning in agent/, common/, plugins/ and tools/"
else
	echo "not ok 2 cppcheck: findings"
	sed 's/^/# /' <<<"$out" | head -40
	fail=1
fi
exit $fail
