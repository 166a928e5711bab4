import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_start_has_two_commands_and_ci_runs_the_test_one():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(commands) == 2 and all("\n" not in c for c in commands)
    assert commands[1] in (REPO / ".ci" / "run").read_text()


def test_architecture_lists_every_module():
    """docs/architecture.md's module table names every module of the core and the plugin."""
    table = (REPO / "docs" / "architecture.md").read_text().split("## The tree, module by module", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `([^`]+\.py)` \|", table, re.M))
    modules = {str(p.relative_to(REPO / "src" / "semiconv")) for p in (REPO / "src" / "semiconv").rglob("*.py")}
    modules |= {str(p.relative_to(REPO)) for p in (REPO / "napari_semiconv").rglob("*.py")}
    modules -= {"__about__.py", "__main__.py"}
    assert modules == listed, (sorted(modules - listed), sorted(listed - modules))
