"""Copy a trained model folder into the package as a bundled model (weights stored as float16).

    python benchmarks/release/bundle_model.py runs/long-fold0 --name bbbc010-brightfield \
        [--set smooth_noise_above=0.02 ...]

--set changes inference settings of the model's config (e.g. the noise smoothing of
`semiconv.normalize`); each is recorded in the bundle's config.json under "bundled_with".
The bundle goes into this checkout's src/semiconv/models (the package an install ships), not
into an installed copy of the package; --into names another folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from semiconv.inference import load_model
from semiconv.model_folders import save_model_folder

CHECKOUT_MODELS = Path(__file__).resolve().parents[2] / "src" / "semiconv" / "models"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("source")
    parser.add_argument("--name", default="bbbc010-brightfield")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="model config values (JSON values)")
    parser.add_argument("--into", type=Path, default=CHECKOUT_MODELS, help="models folder (default: this checkout's)")
    args = parser.parse_args()
    model = load_model(args.source, device="cpu")
    changes = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    config = dataclasses.replace(model.config, **changes)
    config.validate()
    meta = {k: v for k, v in model.meta.items() if k not in ("format", "semiconv_version", "model")}
    meta["trained_from"] = str(args.source)
    if changes:
        meta["bundled_with"] = changes
    target = args.into / args.name
    save_model_folder(target, model.network, config, meta, half=True)
    size = sum(p.stat().st_size for p in target.iterdir()) / 1e6
    print(json.dumps({"bundled": str(target), "size_mb": round(size, 2), "step": meta.get("step"), "set": changes,
                      "validation": {k: meta.get("validation", {}).get(k) for k in ("AP", "AP50", "AP75", "avAP")}}))


if __name__ == "__main__":
    main()
