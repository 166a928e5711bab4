"""benchmarks/release/check_candidate.py: every shipping target judged from the measurements' JSON files."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "release" / "check_candidate.py"


def _tracking(model: Path, usual: float, idf1: float, perfect_idf1: float) -> dict:
    return {"summary": {"tracked": {"usual_label": usual, "idf1_mean": idf1}, "link_share_of_segmentation": 0.01,
                        "tracked_true_identities": {"usual_label": 1.0, "idf1_mean": perfect_idf1},
                        "model": str(model)}, "sequences": [{"well": "A11", "seed": 0}]}


def test_targets_are_judged_from_finished_measurements_without_running_them_again(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "weights.pt").write_bytes(b"\0" * 12_000_000)
    out = tmp_path / "check"
    out.mkdir()
    milestone = {"model": str(model), "step": 3000, "thresholds": {"score": 0.8},
                 "held_out": {"avAP": 0.81, "score@0.5": 0.95, "overlap_recall@0.8": 0.72},
                 "held_out_shifted": {"avAP": 0.69},  # a drop of 0.12: over the 0.10 allowed
                 "training_wells": {"avAP": 0.86}}
    speed = {"model": str(model), "ours_s_per_image": 0.6, "ratio_ours_over_stock": 0.16}
    files = {"milestone": milestone, "tracking8": _tracking(model, 1.0, 0.97, 0.98), "tracking30": _tracking(model, 0.96, 0.88, 0.91), "speed": speed}
    for name, content in files.items():
        (out / f"{name}.json").write_text(json.dumps(content))
    r = subprocess.run([sys.executable, str(SCRIPT), str(model), "--data", "unused.npz", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert not list(out.glob("*.log"))  # nothing measured again
    report = json.loads((out / "targets.json").read_text())
    met = {row["target"]: row["met"] for row in report["targets"]}
    failed = sorted(name for name, ok in met.items() if not ok)
    assert failed == ["30 frames: IDF1 (#24)", "avAP drop on the shifted copy (#21)"]
    figures = {row["target"]: row["figure"] for row in report["targets"]}
    assert abs(figures["weights MB (#21)"] - 12.0) < 1e-9
    assert abs(figures["avAP drop on the shifted copy (#21)"] - 0.12) < 1e-9
    assert report["all_met"] is False and report["step"] == 3000
    assert "some targets not met" in r.stdout
    assert "| 30 frames: IDF1 (#24) | 0.880 (perfect identities: 0.910) | >= 0.9 | no |" in r.stdout
    assert {row["target"]: row.get("perfect_identities") for row in report["targets"]}["8 frames: IDF1 (#24)"] == 0.98

    r = subprocess.run([sys.executable, str(SCRIPT), str(model), "--data", "unused.npz", "--out", str(out), "--seeds", "0", "1"],
                       capture_output=True, text=True, cwd=ROOT)  # the tracking files were made with seed 0 only
    assert r.returncode != 0 and "with seeds [0]: use another --out" in r.stderr

    (out / "milestone.json").write_text(json.dumps({**milestone, "model": "another"}))  # left by a check of another model
    r = subprocess.run([sys.executable, str(SCRIPT), str(model), "--data", "unused.npz", "--out", str(out)],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0 and "milestone.json was made for model another: use another --out" in r.stderr


def test_a_folder_without_a_model_is_refused_in_one_line(tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path), "--data", "x.npz", "--out", str(tmp_path / "c")],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode != 0
    assert r.stderr.strip().endswith("not a model folder (no config.json)") and "Traceback" not in r.stderr
