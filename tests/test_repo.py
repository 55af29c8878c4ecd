"""Guard rails on the repository itself."""

import re
import subprocess

from helpers import REPO


def test_readme_test_command_is_what_ci_runs() -> None:
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert len(blocks) == 2, "the quick start has exactly two commands"
    ci = (REPO / ".ci" / "run").read_text()
    assert blocks[1].strip() in ci


def test_no_private_keys_committed() -> None:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    assert not [f for f in files if f.endswith((".p12", ".pfx", ".key"))]
    for f in files:
        path = REPO / f
        if path.suffix in {".py", ".pem", ".crt", ".toml", ".md", ".txt"} and path.is_file():
            assert "PRIVATE KEY-----" not in path.read_text(errors="ignore") or f.startswith("tests/"), f
