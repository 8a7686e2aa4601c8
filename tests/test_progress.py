"""Progress bars show on a terminal only (never in notebook outputs or the book)."""
import io
import sys

from dplpaper import progress


def test_disabled_off_a_terminal(monkeypatch):
    monkeypatch.delenv("DPLPAPER_PROGRESS", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())   # not a tty
    assert not progress.progress_enabled()
    bar = progress.tqdm(total=3)
    bar.update(3)
    bar.close()
    assert sys.stderr.getvalue() == ""


def test_environment_switch(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    monkeypatch.setenv("DPLPAPER_PROGRESS", "1")
    assert progress.progress_enabled()
    assert progress.tqdm(total=1, disable=True).disable            # the caller's off wins
    monkeypatch.setenv("DPLPAPER_PROGRESS", "0")
    assert progress.tqdm(total=1).disable
