import os

from bot.health import STALE_SECONDS, is_alive


def test_health_file_must_be_fresh(tmp_path) -> None:
    path = tmp_path / "alive"
    assert not is_alive(path)
    path.write_text("x")
    assert is_alive(path)
    old = path.stat().st_mtime - STALE_SECONDS - 5
    os.utime(path, (old, old))
    assert not is_alive(path)


def test_the_healthcheck_loads_nothing_heavy(tmp_path) -> None:
    """Docker runs it every minute inside the bot's memory limit (benchmarks.healthcheck times it)."""
    import subprocess
    import sys

    alive = tmp_path / "alive"
    alive.write_text("1")
    code = """
import sys
from bot.health import main
status = main([])
heavy = ("core", "numpy", "faiss", "onnxruntime", "PIL", "telegram", "torch")
print(status, sorted(m for m in heavy if m in sys.modules))
"""
    env = {"HEALTH_FILE": str(alive), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(__import__("pathlib").Path.cwd())}
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.strip() == "0 []", result.stdout + result.stderr
    (tmp_path / ".env").write_text(f"HEALTH_FILE={tmp_path / 'other'}\n")
    env.pop("HEALTH_FILE")
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.strip() == "1 []", result.stdout + result.stderr  # .env names a file that is not there
