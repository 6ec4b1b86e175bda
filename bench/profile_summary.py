#!/usr/bin/env python3
"""Summarize py-spy collapsed stacks (`py-spy record --format raw`, as bench/run.py
--py-spy writes them): the share of samples spent in (inclusive) and directly in (self)
each function, so the cause of a slow scenario reads as a short table.

    .venv/bin/python bench/profile_summary.py PROFILE.txt [--top 30] [--match receivables]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="only frames whose text contains this")
    parser.add_argument("--root", default="RequestContext.__call__",
                        help="only stacks through this frame (default: the app's outermost middleware, "
                             "so idle threads and the event loop's waits are left out); '' for all")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(args.path) as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            frames = [_short(f) for f in stack.split(";")]
            if args.root and not any(f.startswith(args.root) for f in frames):
                continue
            total += n
            for frame in set(frames):
                inclusive[frame] += n
            own[frames[-1]] += n
    print(f"{total} samples\n\ninclusive:")
    for frame, n in inclusive.most_common():
        if args.match in frame:
            print(f"{100 * n / total:6.1f}%  {frame}")
            args.top -= 1
            if args.top <= 0:
                break
    print("\nself:")
    for frame, n in own.most_common(25):
        print(f"{100 * n / total:6.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
