#!/usr/bin/env python3
"""Runs every test binary behind a ctest label once, whole, a few at a time.

    run-test-binaries.py BUILD_DIR LABEL [--jobs N] [--timeout S] [-- PREFIX...]

ctest runs each GoogleTest case as a process of its own (gtest_discover_tests), which isolates
them but costs a process start per test. Under ASan+UBSan that start (shadow memory, runtime
init) is most of the cost: the 425 unit tests took 107 s of CPU one process each, and 15 s as
11 whole binaries. scripts/sanitizers.sh uses this for the sanitized unit tests; the plain tree
keeps ctest's one process per test.

The binaries and their working directories come from `ctest -L LABEL --show-only=json-v1`, so a
new test binary is never left out. Each binary's output goes to BUILD_DIR/test-binaries/NAME.log
and is printed when it fails. A binary fails on a non-zero exit, on a timeout, or when it
reports a skipped test (a skipped test is a defect here). PREFIX (e.g. `setarch x86_64 -R`) runs
before each binary. Exit 0 when every binary passed, 1 otherwise, 2 on bad usage.
"""
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def main() -> int:
    args = sys.argv[1:]
    prefix = []
    if "--" in args:
        i = args.index("--")
        args, prefix = args[:i], args[i + 1:]
    jobs, timeout = os.cpu_count() or 2, 300.0
    rest = []
    it = iter(args)
    for a in it:
        if a == "--jobs":
            jobs = int(next(it, "0"))
        elif a == "--timeout":
            timeout = float(next(it, "0"))
        else:
            rest.append(a)
    if len(rest) != 2 or jobs < 1 or timeout <= 0:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    build, label = os.path.abspath(rest[0]), rest[1]
    listing = subprocess.run(["ctest", "-L", label, "--show-only=json-v1"], cwd=build, capture_output=True,
                             text=True, check=False)
    if listing.returncode != 0:
        print(f"run-test-binaries: ctest could not list the tests of {build}: {listing.stderr.strip()}",
              file=sys.stderr)
        return 1
    binaries = {}  # path -> (working directory, number of tests)
    for test in json.loads(listing.stdout).get("tests", []):
        command = test.get("command") or []
        if not command:
            continue
        cwd = build
        for prop in test.get("properties", []):
            if prop.get("name") == "WORKING_DIRECTORY":
                cwd = prop["value"]
        path = command[0]
        binaries[path] = (cwd, binaries.get(path, (cwd, 0))[1] + 1)
    if not binaries:
        print(f"run-test-binaries: no tests labelled '{label}' in {build}", file=sys.stderr)
        return 1
    logs = os.path.join(build, "test-binaries")
    os.makedirs(logs, exist_ok=True)

    def run(path: str) -> tuple:
        cwd, tests = binaries[path]
        name = os.path.basename(path)
        log = os.path.join(logs, name + ".log")
        start = time.monotonic()
        with open(log, "w") as out:
            try:
                rc = subprocess.run(prefix + [path, "--gtest_brief=1"], cwd=cwd, stdout=out,
                                    stderr=subprocess.STDOUT, timeout=timeout, check=False).returncode
                reason = f"exit {rc}" if rc != 0 else ""
            except subprocess.TimeoutExpired:
                reason = f"timed out after {timeout:.0f} s"
        with open(log, errors="replace") as f:
            text = f.read()
        if not reason and "[  SKIPPED ]" in text:
            reason = "a test was skipped"
        return name, tests, time.monotonic() - start, reason, text

    failed = 0
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for name, tests, seconds, reason, text in pool.map(run, sorted(binaries)):
            if reason:
                failed += 1
                print(f"[unit-binaries] FAIL {name} ({tests} tests, {seconds:.1f} s): {reason}\n{text[-20000:]}",
                      flush=True)
            else:
                print(f"[unit-binaries] ok   {name} ({tests} tests, {seconds:.1f} s)", flush=True)
    total = sum(t for _, t in binaries.values())
    print(f"[unit-binaries] {len(binaries) - failed} of {len(binaries)} binaries passed ({total} tests)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
