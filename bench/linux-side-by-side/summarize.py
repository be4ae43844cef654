#!/usr/bin/env python3
"""Turn bench/linux-side-by-side/run.sh's round lines into one table (min / median per side,
ratio of the medians) and check that both sides computed the same results."""
import statistics
import sys

ROWS = [
    ("map_4k_per_page", "map 4K, one call per page"),
    ("map_4k_batched_512", "map 4K, 512 pages per call"),
    ("unmap_4k_per_page", "unmap 4K, one call per page"),
    ("unmap_4k_batched_512", "unmap 4K, 512 pages per call"),
    ("iova_to_phys_random_1M", "iova_to_phys, 1M random lookups in 1 GiB"),
    ("map_unmap_2m_block", "map + unmap of a 2 MiB block"),
    ("iova_one_page_cached", "IOVA alloc+free, one page, cached"),
    ("iova_working_set_cached", "IOVA working set (4,096 live, 1-16 pages), cached"),
    ("iova_working_set_uncached", "IOVA working set, uncached (Linux: alloc_iova / free_iova)"),
]


def main():
    rounds_file, ir_file, version, rounds = sys.argv[1:5]
    times = {}
    checks = {}
    for line in open(rounds_file):
        side, _round, row, ns, check = line.split()
        times.setdefault((side, row), []).append(float(ns))
        checks.setdefault(row, set()).add(check)
    instr = {}
    for line in open(ir_file):
        f = line.split()
        if len(f) == 4 and f[2] and f[3]:
            instr[(f[0], f[1])] = int(f[2]) / int(f[3])
    bad = [row for row, c in checks.items() if len(c) != 1]
    print(f"ns per op, min / median of {rounds} alternating rounds; Linux {version} built as "
          "userspace C (gcc -O2) under bench/linux-side-by-side/shim; thread CPU time, one "
          "pinned CPU")
    print()
    head = f"| row | Linux {version} | smmu-lab | Linux / smmu-lab (medians) |"
    if instr:
        head += " instructions per op, Linux / smmu-lab |"
    print(head)
    print("|---" * (head.count("|") - 1) + "|")
    for key, label in ROWS:
        lx, sl = times.get(("linux", key)), times.get(("smmu-lab", key))
        if not lx or not sl:
            continue
        ratio = statistics.median(lx) / statistics.median(sl)
        line = (f"| {label} | {min(lx):.2f} / {statistics.median(lx):.2f} | "
                f"{min(sl):.2f} / {statistics.median(sl):.2f} | {ratio:.2f}x |")
        if instr:
            il, isl = instr.get(("linux", key)), instr.get(("smmu-lab", key))
            line += f" {il:.0f} / {isl:.0f} |" if il and isl else " |"
        print(line)
    if bad:
        print(f"\nRESULTS DIFFER between the sides for: {', '.join(bad)}", file=sys.stderr)
        sys.exit(1)
    print("\nBoth sides computed the same results on every row (checksums equal).")


main()
