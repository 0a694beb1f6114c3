#!/usr/bin/env python3
"""Metadata workload for bench/bridge-bench, one process (no fork per file).

usage: metadata.py DIR COUNT [SIZE]

Creates COUNT files of SIZE bytes (default 512) in the new directory DIR
(open O_CREAT|O_EXCL, write, close), stats each, unlinks each, removes DIR.
Prints one line: "create S stat S unlink S total S" (seconds, wall clock).
"""
import os
import sys
import time


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    directory, count = sys.argv[1], int(sys.argv[2])
    payload = b"m" * (int(sys.argv[3]) if len(sys.argv) == 4 else 512)
    names = [os.path.join(directory, "f%05d" % i) for i in range(count)]
    os.mkdir(directory)
    t0 = time.monotonic()
    for name in names:
        fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        os.write(fd, payload)
        os.close(fd)
    t1 = time.monotonic()
    for name in names:
        if os.stat(name).st_size != len(payload):
            print("metadata.py: %s has the wrong size" % name, file=sys.stderr)
            return 1
    t2 = time.monotonic()
    for name in names:
        os.unlink(name)
    t3 = time.monotonic()
    os.rmdir(directory)
    print("create %.3f stat %.3f unlink %.3f total %.3f" % (t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
