"""benchmarks/release/reproduce_bundled_model.py: the one-command recipe of the bundled model (dry run)."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_reproduction_chains_the_stages_skips_finished_and_resumes_interrupted(tmp_path):
    runs = tmp_path / "runs"
    first = runs / "bf_semiconv"  # stage 1 finished: weights and a log that reached its stop_after
    first.mkdir(parents=True)
    (first / "weights.pt").write_bytes(b"")
    (first / "log.jsonl").write_text(json.dumps({"step": 1600}) + "\n")
    second = runs / "bf_foreground" / "checkpoints"  # stage 2 interrupted
    second.mkdir(parents=True)
    (second / "last.pt").write_bytes(b"")
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "release" / "reproduce_bundled_model.py"), "--dry-run",
                        "--runs", str(runs), "--data", "DATA"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "# bf_semiconv: finished, skipped"
    trains = [shlex.split(line) for line in lines if " semiconv train " in line]
    assert len(trains) == 7  # stages 2-8
    assert "--resume" in trains[0] and all("--resume" not in t for t in trains[1:])
    previous = str(first)
    for cmd in trains:  # each stage starts from the one before and its config exists
        assert cmd[cmd.index("--init") + 1] == previous
        assert Path(cmd[cmd.index("--config") + 1]).is_file()
        assert cmd[cmd.index("--data") + 1] == "DATA"
        previous = cmd[cmd.index("--out") + 1]
    assert previous.endswith("bf_joint_noblur2")
    assert any("choose_cleanup.py" in line and "--write" in line for line in lines)
    assert "bundle_model.py" in lines[-1] and "bbbc010-brightfield-repro" in lines[-1]
    assert not (runs / "bf_s8_clean").exists()  # a dry run writes nothing
