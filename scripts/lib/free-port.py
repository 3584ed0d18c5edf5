#!/usr/bin/env python3
"""Prints a free TCP port on 127.0.0.1 that this ledger has not handed out before.

    free-port.py LEDGER [LOW HIGH]

A port found free is released at once for the server to bind a moment later, so until then the
kernel may hand the same port out again: two servers started back to back could be given one
port (a CI run had a service and a relay on one port). The ledger (a file of ports, one per line;
created if missing) remembers what this script run handed out, and those are skipped.
Without LOW HIGH a random port between 10000 and the start of the kernel's ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range, usually 32768) is tried: the test programs take their
ports from the kernel (port 0, which hands out ephemeral ones), so servers and services these
scripts start beside a running test suite (the reliability scenarios and the cluster test run
in a lane of their own, scripts/test.sh) never race it for a port. With LOW HIGH a random port
in [LOW, HIGH) is tried (Erlang's distribution port must stay below 55536 for its CLI tools).
Callers running side by side (the scenarios do) share one ledger safely: it is read and
extended under an exclusive lock.
"""
import fcntl
import random
import socket
import sys


def bindable(port: int) -> bool:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def main() -> int:
    if len(sys.argv) not in (2, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    ledger = sys.argv[1]
    if len(sys.argv) == 4:
        low, high, kernel_fallback = int(sys.argv[2]), int(sys.argv[3]), False
    else:  # an unusual ephemeral range may leave no room below it: then the kernel picks
        low, high = 10000, ephemeral_low()
        kernel_fallback = high - low < 1000
    with open(ledger, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, after the append below
        f.seek(0)
        used = {int(x) for x in f.read().split()}
        port = pick(used, low, high, kernel_fallback)
        if port is not None:
            f.write(f"{port}\n")
    if port is None:
        print("free-port.py: no free port found", file=sys.stderr)
        return 1
    print(port)
    return 0


def ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def pick(used: set, low: int, high: int, kernel_fallback: bool) -> "int | None":
    for _ in range(1000):
        if not kernel_fallback:
            port = random.randrange(low, high)
            if port in used or not bindable(port):
                continue
        else:
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            if port in used:
                continue
        return port
    return None


if __name__ == "__main__":
    sys.exit(main())
