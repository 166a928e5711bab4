"""Batch throughput: 1 worker vs the LocalCluster default on the BBBC010 training wells, one run.

    python benchmarks/batch_scaling.py --data ../shared/data/bbbc010 [--model bbbc010-brightfield] [--limit 50]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time

from semiconv.batch import find_inputs, run_batch


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="BBBC010-layout folder (e.g. ../shared/data/bbbc010)")
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--limit", type=int, default=50)
    args = parser.parse_args()
    items = find_inputs(args.data)[: args.limit]
    src = tempfile.mkdtemp()
    for item in items:  # the same images for both runs
        os.symlink(item.image.resolve(), os.path.join(src, item.image.name))
        if item.fluorescence:
            os.symlink(item.fluorescence.resolve(), os.path.join(src, item.fluorescence.name))
    result = {"images": len(items), "cpu_count": os.cpu_count()}
    for label, workers in (("1_worker", 1), ("localcluster_default", None)):
        out = tempfile.mkdtemp()
        start = time.perf_counter()
        r = run_batch(src, out, args.model, workers=workers)
        seconds = time.perf_counter() - start
        result[label] = {"seconds": round(seconds, 1), "images_per_s": round(r["processed"] / seconds, 3),
                         "workers": r["local_workers"], "failed": r["failed"]}
        shutil.rmtree(out)
    result["speedup_default_over_1"] = round(result["localcluster_default"]["images_per_s"] / result["1_worker"]["images_per_s"], 2)
    shutil.rmtree(src)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
