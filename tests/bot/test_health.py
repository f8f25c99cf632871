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
