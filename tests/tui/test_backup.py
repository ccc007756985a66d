"""Unsaved edits survive a crash: a backup is written as the user types and offered on restart."""

from __future__ import annotations

import os
import time

from tui.app import BACKUP_DELAY, RnnGraphApp
from tui.dialogs.restore import RestoreDialog
from tui.document import Document
from tui.widgets.spec_editor import SpecEditor

from .conftest import settle, spec_path

SIZE = (160, 48)


def _backup_of(path) -> "os.PathLike":
    return path.parent / f".{path.name}.rnngraph-backup"


async def _type(pilot, app, keys) -> None:
    editor = app.screen.query_one(SpecEditor)
    editor.focus()
    editor.move_cursor((0, 0))
    await pilot.press(*keys)


async def test_typing_writes_a_backup_and_the_next_start_offers_it(elman):
    original = elman.read_text()
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert not _backup_of(elman).exists()
        await _type(pilot, app, ["#", " ", "k", "e", "e", "p", "enter"])
        await pilot.pause(BACKUP_DELAY + 0.5)
        edited = app.spec_text
        assert edited.startswith("# keep\n")
        assert _backup_of(elman).read_text() == edited      # debounced, then written
        # the app ends without saving or quitting (a crash, a killed terminal)
    assert _backup_of(elman).exists() and elman.read_text() == original

    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, RestoreDialog)
        assert "+1 / -0 lines" in str(app.screen.query_one("#restore-summary").render())
        await pilot.press("r")
        await settle(pilot, app)
        assert not isinstance(app.screen, RestoreDialog)
        assert app.spec_text == edited
        assert app.screen.query_one(SpecEditor).text == edited
        assert app.dirty and app.analysis.ok
        assert elman.read_text() == original                 # nothing on disk changed
        await pilot.press("ctrl+z")                          # restoring is one undoable edit
        await settle(pilot, app)
        assert app.spec_text == original
        await pilot.press("ctrl+y")
        await settle(pilot, app)
        await pilot.press("ctrl+s")                          # saving removes the backup
        await pilot.pause()
        assert elman.read_text() == edited
        assert not _backup_of(elman).exists()


async def test_discarding_the_offer_deletes_the_backup(elman):
    _backup_of(elman).write_text("# lost edit\n" + elman.read_text())
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, RestoreDialog)
        await pilot.press("d")
        await pilot.pause()
        assert not _backup_of(elman).exists()
        assert app.spec_text == elman.read_text() and not app.dirty


async def test_a_backup_older_than_the_file_or_equal_to_it_is_not_offered(elman):
    backup = _backup_of(elman)
    backup.write_text("# old edit\n" + elman.read_text())
    past = time.time() - 100
    os.utime(backup, (past, past))                 # the file was saved after the backup
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert not isinstance(app.screen, RestoreDialog)
    backup.write_text(elman.read_text())           # newer, but the same text
    assert Document.open(str(elman)).pending_backup() is None


async def test_quitting_and_discarding_removes_the_backup(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await _type(pilot, app, ["#", "enter"])
        await pilot.pause(BACKUP_DELAY + 0.5)
        assert _backup_of(elman).exists()
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
    assert not _backup_of(elman).exists()
    assert elman.read_text() == spec_path("elman_temporal_xor.yaml").read_text()   # nothing was written


async def test_undoing_every_edit_forgets_the_backup(elman):
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await _type(pilot, app, ["x"])
        await pilot.pause(BACKUP_DELAY + 0.5)
        assert _backup_of(elman).exists()
        await pilot.press("backspace")
        await pilot.pause(BACKUP_DELAY + 0.5)
        assert not app.dirty and not _backup_of(elman).exists()


async def test_a_new_unsaved_spec_is_backed_up_in_the_state_directory(state_dir, tmp_path):
    app = RnnGraphApp()
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await _type(pilot, app, ["#", " ", "n", "e", "w", "enter"])
        await pilot.pause(BACKUP_DELAY + 0.5)
        edited = app.spec_text
    backup = state_dir / "untitled.yaml.rnngraph-backup"
    assert backup.read_text() == edited

    app = RnnGraphApp()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, RestoreDialog)
        await pilot.press("r")
        await settle(pilot, app)
        assert app.spec_text == edited
        app._save(str(tmp_path / "saved.yaml"))            # save as: the untitled backup goes
        await pilot.pause()
    assert not backup.exists()
    assert (tmp_path / "saved.yaml").read_text() == edited


def test_a_backup_goes_to_the_state_directory_when_the_spec_directory_refuses(tmp_path, state_dir,
                                                                              monkeypatch):
    from tui import document

    spec = tmp_path / "net.yaml"
    spec.write_text("rnngraph: 1\n")
    real = document.save_atomic

    def refuse_beside(path, text, **kwargs):
        if os.path.dirname(path) == str(tmp_path):
            raise PermissionError(13, "Permission denied", path)
        real(path, text, **kwargs)
    monkeypatch.setattr(document, "save_atomic", refuse_beside)
    doc = Document.open(str(spec))
    written = doc.write_backup("rnngraph: 1\n# edited\n")
    assert os.path.dirname(written) == str(state_dir)
    assert doc.pending_backup() == (written, "rnngraph: 1\n# edited\n")
    doc.remove_backup()
    assert not os.path.exists(written)


def test_saving_keeps_permissions_and_backups_are_private(tmp_path):
    from tui.document import save_atomic

    old = os.umask(0o022)
    try:
        new = tmp_path / "new.yaml"
        save_atomic(str(new), "rnngraph: 1\n")
        assert new.stat().st_mode & 0o777 == 0o644          # as open() would make it
        new.chmod(0o640)
        save_atomic(str(new), "rnngraph: 1\n# again\n")
        assert new.stat().st_mode & 0o777 == 0o640          # an existing file keeps its mode
        written = Document.open(str(new)).write_backup("rnngraph: 1\n# edit\n")
        assert os.stat(written).st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


async def test_quitting_or_a_kill_while_the_offer_is_open_keeps_the_backup(elman):
    backup = _backup_of(elman)
    backup.write_text("# lost edit\n" + elman.read_text())
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, RestoreDialog)
        app._terminated()                 # what SIGTERM / SIGHUP run
        await pilot.pause()
    assert backup.read_text().startswith("# lost edit")
    app = RnnGraphApp(str(elman))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, RestoreDialog)
        await pilot.press("ctrl+q")       # not dirty: quits at once, and leaves the backup alone
        await pilot.pause()
    assert backup.read_text().startswith("# lost edit")
