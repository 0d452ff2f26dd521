#!/usr/bin/env bash
# A newcomer's build prints warnings for our code only, and our code has none (issue 15 item 8).
# Checks a build log (default build/build.log, written by scripts/build.sh; a fresh build, or one
# through the shared ccache, which replays each compiler's stderr) for compiler warnings, and that
# Eigen is included only through util/eigen.h, which silences GCC 12's AVX-512 false positive.
# Usage: bash scripts/check_quiet_build.sh [BUILD_LOG]
set -euo pipefail
cd "$(dirname "$0")/.."
log=${1:-build/build.log}
status=0
direct=$(grep -rln --include='*.h' --include='*.cpp' -E '#include <(Eigen|unsupported/Eigen)/' \
           apps bench data models optim tests trainer util | grep -v '^util/eigen.h$' || true)
if [ -n "$direct" ]; then
  echo "FAIL: include \"util/eigen.h\" instead of <Eigen/...> in:"; echo "$direct"; status=1
fi
if [ ! -f "$log" ]; then
  echo "FAIL: $log: no build log (run scripts/build.sh first)"; exit 1
fi
# The count means something only if every object of ours is compiled with the warning flags
# (CMakeLists.txt LORASCOPE_WARNING_FLAGS): a target without them hides its warnings. Checked in
# the build files next to the log (Ninja's build.ninja, or Make's flags.make files); googletest
# built from source is third-party and keeps its own flags.
build_dir=$(dirname "$log")
unflagged=""
if [ -f "$build_dir/build.ninja" ]; then
  unflagged=$(awk '/^build [^:]*: CXX_COMPILER__/ { obj = $2; sub(/:$/, "", obj); next }
                   /^  FLAGS = / && obj != "" { if (obj !~ /googletest/ && ($0 !~ / -Wall( |$)/ || $0 !~ / -Wextra( |$)/)) print obj; obj = "" }' \
              "$build_dir/build.ninja")
elif [ -d "$build_dir/CMakeFiles" ]; then
  unflagged=$(find "$build_dir" -name flags.make -not -path '*googletest*' -exec grep -L -e '-Wall.*-Wextra' {} + || true)
fi
if [ -n "$unflagged" ]; then
  echo "FAIL: compiled without -Wall -Wextra ($(echo "$unflagged" | wc -l) objects), e.g.:"
  echo "$unflagged" | head -5
  status=1
fi
count=$(grep -c 'warning:' "$log" || true)
if [ "$count" -ne 0 ]; then
  echo "FAIL: $log: $count compiler warnings; the first ones:"
  grep 'warning:' "$log" | head -5
  status=1
else
  echo "PASS: $log: 0 compiler warnings"
fi
exit $status
