import io

from prep.progress import StageProgress, progress_over


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_plain_lines_not_redrawn_bars() -> None:
    log = io.StringIO()
    progress = StageProgress(stream=log)
    for done in range(1, 1001):
        progress("embed", done, 1000)
    lines = log.getvalue().splitlines()
    assert lines[0] == "embedding: 1/1000 photos" and lines[-1] == "embedding: 1000/1000 photos"
    assert len(lines) <= 3 and "\r" not in log.getvalue()


def test_a_terminal_gets_a_bar() -> None:
    terminal = Terminal()
    progress = StageProgress(stream=terminal)
    for done in range(1, 11):
        progress("embed", done, 10)
    assert "embedding: 100%" in terminal.getvalue() and "\r" in terminal.getvalue()


def test_progress_over_yields_everything_and_can_be_silent(capsys) -> None:
    assert list(progress_over(range(5), "evaluate", enabled=False)) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""
