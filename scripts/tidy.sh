#!/usr/bin/env bash
# clang-tidy 14 over our C++ sources with the checks in .clang-tidy (docs/reliability.md,
# "Hardening"). Any finding fails the script (WarningsAsErrors: '*').
#   scripts/tidy.sh              every .cpp of ours: libs/ outbox-relay/ order-status-service/
#                                tools/ bench/ tests/
#   scripts/tidy.sh FILE...      only these files (headers are checked through the .cpp files
#                                that include them)
# Environment: OSS_TIDY_BUILD (build dir for the compile database, default build-tidy),
#              TIDY_JOBS (parallel clang-tidy processes, default nproc), CLANG_TIDY.
# Prints each finding, then one summary line; exit 0 only when clean.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${OSS_TIDY_BUILD:-build-tidy}
jobs=${TIDY_JOBS:-$(nproc)}
tidy=${CLANG_TIDY:-clang-tidy-14}
command -v "$tidy" >/dev/null || { echo "[tidy] $tidy not found (apt-get install clang-tidy-14)" >&2; exit 2; }
start=$(date +%s)

# 1. The compile database. Configuring is enough: no source of ours includes a generated
#    header (the generated .cpp files, schema migrations and the dashboard, are not ours to
#    lint).
if [ ! -f "$build/compile_commands.json" ]; then
  echo "[tidy] configuring $build for its compile database"
  gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
  cmake -S . -B "$build" "${gen[@]}" -DOSS_BUILD_TESTS=ON -DOSS_BUILD_BENCH=ON \
    -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >"$build.configure.log" 2>&1 \
    || { cat "$build.configure.log" >&2; echo "[tidy] configure failed" >&2; exit 2; }
  rm -f "$build.configure.log"
fi

# 2. A filtered copy of it for clang: the build compiler is GCC 12, and clang 14 does not know
#    some of its flags. Unknown -W options are silenced by -Wno-unknown-warning-option below;
#    the GCC-only -f/-W options that clang rejects outright are removed here. -Werror is
#    dropped because clang's own compiler warnings are not what this gate checks (the GCC
#    build is the warnings gate, with -Werror); with it, a clang-only warning would abort the
#    translation unit before any check ran. The fuzz targets are not CMake targets
#    (scripts/fuzz.sh builds them with clang), so their entries are added with that script's
#    flags.
db="$build/tidy-db"
mkdir -p "$db"
python3 - "$build/compile_commands.json" "$db/compile_commands.json" "$root" <<'EOF'
import json, os, shlex, sys
src, dst, root = sys.argv[1:4]
gcc_only = {"-Wno-error=restrict", "-Wno-error=maybe-uninitialized", "-Wno-error=tsan",
            "-Wno-tsan", "-Werror"}
out = []
for e in json.load(open(src)):
    rel = os.path.relpath(e["file"], root)
    if not rel.startswith(("libs/", "outbox-relay/", "order-status-service/", "tools/", "bench/",
                           "tests/")):
        continue  # generated sources in the build tree (schema migrations, the dashboard)
    args = shlex.split(e["command"]) if "command" in e else e["arguments"]
    args = [a for a in args if a not in gcc_only]
    out.append({"directory": e["directory"], "file": e["file"], "arguments": args})
for t in ("envelope", "workflow"):
    out.append({"directory": root, "file": f"{root}/tests/fuzz/fuzz_{t}.cpp",
                "arguments": ["clang++", "-std=c++20", "-Wall", "-Wextra",
                              "-Iorder-status-service/src", "-Ilibs/core/include",
                              "-DSPDLOG_FMT_EXTERNAL", "-c", f"tests/fuzz/fuzz_{t}.cpp"]})
json.dump(out, open(dst, "w"), indent=1)
EOF

# 3. The files.
if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files -- 'libs/*.cpp' 'outbox-relay/*.cpp' 'order-status-service/*.cpp' \
                         'tools/*.cpp' 'bench/*.cpp' 'tests/*.cpp' | sort)
fi
[ "${#files[@]}" -gt 0 ] || { echo "[tidy] no files" >&2; exit 2; }

# 4. clang-tidy, one process per file, $jobs at a time; each file's output goes to its own log
#    so that parallel runs do not interleave.
logs="$build/tidy-logs"
rm -rf "$logs"; mkdir -p "$logs"
export tidy db logs
printf '%s\0' "${files[@]}" | xargs -0 -n1 -P "$jobs" sh -c '
  log="$logs/$(printf %s "$1" | tr "/" "_").log"
  "$tidy" -p "$db" --quiet --extra-arg=-Wno-unknown-warning-option "$1" >"$log" 2>&1 \
    || echo "$1" >"$log.failed"' sh || true

# 5. Report. A finding in a header shows up once per translation unit that includes it (and
#    with "dir/../dir" spellings of its path): it is printed and counted once.
failed=$(find "$logs" -name '*.failed' | wc -l)
cat "$logs"/*.log | python3 -c '
import os, re, sys
seen = []
for line in sys.stdin:
    m = re.match(r"^(/[^ :]+):(\d+):(\d+): (warning|error): ", line)
    if m:
        line = os.path.normpath(m.group(1)) + line[len(m.group(1)):]
        if line not in seen:
            seen.append(line)
sys.stdout.write("".join(sorted(seen)))' >"$logs/findings.txt"
findings=$(wc -l <"$logs/findings.txt")
cat "$logs/findings.txt"
# A file that failed without a finding line (a parse error, a file not in the database).
if [ "$failed" -gt 0 ] && [ "$findings" -eq 0 ]; then
  for f in "$logs"/*.failed; do cat "${f%.failed}"; done
fi
secs=$(( $(date +%s) - start ))
if [ "$failed" -eq 0 ] && [ "$findings" -eq 0 ]; then
  echo "[tidy] ${#files[@]} files clean (${secs}s, $jobs jobs)"
  exit 0
fi
checks=$(grep -oE '\[[a-zA-Z0-9.,-]+\]$' "$logs/findings.txt" | sed 's/,-warnings-as-errors//' | sort | uniq -c | sort -rn \
         | awk '{printf "%s%s %s", sep, $2, $1; sep=", "}' || true)
echo "[tidy] FAILED: $findings findings, $failed of ${#files[@]} files failed (${secs}s, $jobs jobs)${checks:+: $checks}" >&2
exit 1
