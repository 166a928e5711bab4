import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_start_has_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[1] in (REPO / ".ci" / "run").read_text()
