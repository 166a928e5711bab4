import shutil

from helpers import run_cli

from semiconv import __version__

run = run_cli  # in-process


def test_help_and_version():
    r = run("--help")
    assert r.returncode == 0 and "data" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_data_check_sample(sample_root, tmp_path):
    r = run("data", "check", str(sample_root / "bbbc010"), "--json", str(tmp_path / "r.json"))
    assert r.returncode == 0, r.stderr
    assert "wells: 3" in r.stdout and "images: 6" in r.stdout
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    assert report["wells"] == 3 and report["worms"] > 30


def test_data_check_bad_folder_is_one_line(tmp_path):
    r = run("data", "check", str(tmp_path / "missing"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and "not found" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_data_check_reports_problems(sample_root, tmp_path):
    shutil.copytree(sample_root / "bbbc010", tmp_path / "d")
    for f in (tmp_path / "d" / "BBBC010_v1_foreground_eachworm").glob("B20_*"):
        f.unlink()
    r = run("data", "check", str(tmp_path / "d"))
    assert r.returncode == 0
    assert "wells: 2" in r.stdout and "well B20: no per-worm masks" in r.stdout
