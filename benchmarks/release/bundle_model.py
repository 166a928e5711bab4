"""Copy a trained model folder into the package as a bundled model (weights stored as float16).

    python benchmarks/release/bundle_model.py runs/bf_semiconv [--name bbbc010-brightfield]
"""

from __future__ import annotations

import argparse
import json

from semiconv.inference import load_model
from semiconv.model_folders import save_model_folder
from semiconv.resources import bundled_models_dir


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("--name", default="bbbc010-brightfield")
    args = parser.parse_args()
    model = load_model(args.source, device="cpu")
    meta = {k: v for k, v in model.meta.items() if k not in ("format", "semiconv_version", "model")}
    meta["trained_from"] = str(args.source)
    target = bundled_models_dir() / args.name
    save_model_folder(target, model.network, model.config, meta, half=True)
    size = sum(p.stat().st_size for p in target.iterdir()) / 1e6
    print(json.dumps({"bundled": str(target), "size_mb": round(size, 2), "step": meta.get("step"),
                      "validation": {k: meta.get("validation", {}).get(k) for k in ("AP", "AP50", "AP75", "avAP")}}))


if __name__ == "__main__":
    main()
