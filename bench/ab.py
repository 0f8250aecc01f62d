#!/usr/bin/env python3
"""Before/after: two infra binaries, converged and check runs alternated on the same
converged hosts (a cluster of its own, `benchab<N>`). Prints medians.

    INFRA_A=old-binary INFRA_B=new-binary bench/ab.py N [runs]
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402


def main():
    n = int(sys.argv[1])
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    binaries = {"A": os.environ["INFRA_A"], "B": os.environ["INFRA_B"]}
    bench.INFRA = binaries["B"]
    c = bench.Cluster(n)
    c.name = f"benchab{n}"
    c.dir = bench.WORK / c.name
    c.write_inventory()
    c.reset()
    bench.INFRA = binaries["B"]
    bench.Infra(c).run("first")
    times = {(k, m): [] for k in binaries for m in ("converged", "check")}
    for mode in ("converged", "check"):
        for i in range(runs):
            for k in (("A", "B") if i % 2 == 0 else ("B", "A")):
                bench.INFRA = binaries[k]
                secs, _, changed = bench.Infra(c).run(mode)
                assert mode != "converged" or changed == 0, changed
                times[(k, mode)].append(secs)
    for (k, mode), values in times.items():
        print(f"{k} {mode}: median {statistics.median(values):.3f}s of {values}")
    c.down()


if __name__ == "__main__":
    main()
