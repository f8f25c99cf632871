"""Adding a cleaning check is one module and one registry line: everything else follows from the registry."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).parents[2]

NEW_CHECK = '''
from prep.checks.base import Finding, PhotoCheck, PhotoUnderReview


class RedCheck(PhotoCheck):
    name = reason = "red"

    def inspect(self, photo: PhotoUnderReview) -> Finding | None:
        red = float(photo.small[..., 0].mean() - photo.small[..., 1:].mean())
        return Finding(photo.path, self.reason, red, 100.0) if red > 100 else None


CHECK = RedCheck()
'''

PROBE = """
import io, sys
from pathlib import Path
from PIL import Image
from prep.__main__ import build_parser
from prep.checks import DEFAULT_CHECKS, PHOTO_CHECKS, REASONS
from prep.clean import analyse

parser = build_parser()
clean = parser._subparsers._group_actions[0].choices["clean"]
assert "red" in clean.format_help(), clean.format_help()
assert "red" in DEFAULT_CHECKS and "red" in REASONS
assert "red" in [c.name for c in PHOTO_CHECKS]  # `prep contributions approve` runs it too
data = Path(sys.argv[1])
for name, colour in (("a.jpg", (250, 10, 10)), ("b.jpg", (90, 120, 140))):
    target = data / "images" / "EKB" / "W1" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (320, 240), colour).save(target)
result = analyse(data, ("red",))
print(sorted((f.path, f.reason) for f in result.findings))
"""


def test_a_new_check_needs_its_module_and_one_registry_line(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "prep", tree / "prep", ignore=shutil.ignore_patterns("__pycache__"))
    (tree / "prep" / "checks" / "red.py").write_text(NEW_CHECK)
    registry = tree / "prep" / "checks" / "__init__.py"
    source = registry.read_text()
    assert source.count("    INTERIOR,\n") == 1
    registry.write_text(
        source.replace("    INTERIOR,\n", "    INTERIOR,\n    RED,\n").replace(
            "from prep.checks.outliers", "from prep.checks.red import CHECK as RED\nfrom prep.checks.outliers"
        )
    )
    env = {"PYTHONPATH": f"{tree}:{REPO}", "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    probe = [sys.executable, "-c", PROBE, str(tmp_path / "data")]
    result = subprocess.run(probe, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[('images/EKB/W1/a.jpg', 'red')]"
