"""The rnngraph terminal UI: ``run(path)`` opens it (``rnngraph tui [SPEC]``).

The app owns the document (file, saved text, current text) and the latest
``Analysis`` of the text; the screens (modes: Edit, Unroll, Step, Train)
watch ``analysis`` and draw from it.  Validation is debounced and runs in a
worker thread, so typing stays responsive.

Unsaved edits are backed up (``Document.write_backup``) a second after the
last change, and on SIGTERM/SIGHUP; saving or quitting without them removes
the backup, and the next start on the same spec offers to restore it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from typing import Iterable

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import ModalScreen, Screen

from .dialogs.confirm import ConfirmDialog
from .dialogs.help import HelpDialog, screen_keys, typing_focus
from .dialogs.prompt import PromptDialog
from .dialogs.restore import RestoreDialog
from .dialogs.templates import TemplateDialog
from .document import Document, remove_file
from .model import Analysis, analyse
from .screens.edit import EditScreen
from .screens.step import StepScreen
from .screens.train import TrainScreen
from .screens.unroll import UnrollScreen
from .templates import TEMPLATES

__all__ = ["RnnGraphApp", "run"]

DEBOUNCE = 0.3  # seconds of quiet typing before the spec is validated again
BACKUP_DELAY = 1.0  # seconds of quiet typing before unsaved edits are backed up
SIGNAL_GRACE = 3.0  # seconds the app has to quit after SIGTERM/SIGHUP before it is ended

SCREEN_NOTES = {
    "edit": "Type YAML on the left; it is checked as you type and the problems are listed "
            "under it (Enter on one jumps to its line).  Esc leaves the editor; then Tab "
            "moves between the panes (problems, buttons, picture, tabs, tables).  While the text has problems the "
            "picture and the tables show the last valid version.  Forms: F6 node, F7 edge, F8 block; F9 "
            "changes and F10 removes the row selected in the Nodes or Edges tab.  In the picture "
            "an edge with a delay is a double line looping back into its target (labelled z^-d).  "
            "Unsaved edits are backed up as you type and offered again after a crash.  Alt+← and "
            "Alt+→ (or dragging the bar between the panes) move the split; Ctrl+T shows or folds the "
            "tables (folded below 100 columns); 'Maximize the picture' in Ctrl+P shows the graph alone.  "
            "A node with no edges in or out is listed as a warning (⚠): the spec still runs.",
    "unroll": "The network unrolled in time: one column per step, its inputs at the bottom and "
              "its outputs at the top.  A light line ending in ▲ is an arc of the same step; a "
              "double line ending in ▶ comes from an earlier step (an edge with a delay), one ending "
              "in ◀ from a later step (a negative delay: a look-ahead or a backward block); dashed "
              "boxes stand for initial states or steps before or after the window.  Outputs with a heavy "
              "border are the steps where the loss counts (train.loss_on).  T sets the number "
              "of steps (applied when typing pauses, or on Enter), [ and ] turn the page of 5 "
              "steps shown, c draws blocks as boxes or as their gates.  The highlighted box is the "
              "cursor: the arrow keys move it in time and up and down a step (or choose a vertex in "
              "the list, or click it) and its equation is shown; coming from the Step screen it is "
              "the vertex that screen is at.",
    "step": "One sample of the spec's data, step by step.  Forward: → moves to the next "
            "step.  b switches to backward: the norm of dLoss/dvalue per node and step, "
            "from the last step; ← moves the backward pass one step earlier.  A strip "
            "fading to ░ and black towards t = 0 is a vanishing gradient; under the table, "
            "log10 |dL/dv| is plotted against t, one letter per node.  c puts a second spec "
            "beside it (the same sample and T: Elman and LSTM on the adding problem), p loads "
            "weights saved by `rnngraph run` (a run folder or its params.npz); the note says which "
            "weights ran (initial, trained on the Train screen, or loaded).  ↑ and ↓ pick the node "
            "whose vertex of the unrolled graph is shown with what it reads.  n draws another sample; "
            "t focuses T (Enter applies; empty for the whole sample).  A Hopfield net settles "
            "its cue as the engine's settle does, with its energy and its overlap with each stored "
            "pattern: with dynamics.update: async, → updates one unit (highlighted ◆◆/◇◇, the energy "
            "never rising) and ] runs to the end of the sweep ([ back); sync nets take a sweep per "
            "step (a 2-cycle is reported) and continuous nets an Euler step of their graph.  k cues "
            "with a stored pattern, 10% more of its units flipped each time, and n takes the next pattern.",
    "train": "s starts the spec's training (the same as `rnngraph run`) in the background, "
             "p pauses it and s resumes it at the next epoch, x stops it (the next s starts at "
             "epoch 1); the plot grows each epoch and the trained weights go to the Step screen.",
}


class RnnGraphApp(App):
    """Edit, unroll, step through and train a recurrent network spec."""

    CSS_PATH = "app.tcss"
    TITLE = "rnngraph"
    MODES = {"edit": EditScreen, "unroll": UnrollScreen, "step": StepScreen, "train": TrainScreen}
    DEFAULT_MODE = "edit"
    BINDINGS = [
        Binding("f1", "help", "Keys", priority=True),
        Binding("question_mark", "help", "Keys", show=False),
        # the screens' tabs on the top line show F2-F5, so the footer leaves them out
        Binding("f2", "switch_mode('edit')", "Edit screen", priority=True,
                show=False),
        Binding("f3", "switch_mode('unroll')", "Unroll screen", priority=True,
                show=False),
        Binding("f4", "switch_mode('step')", "Step screen", priority=True,
                show=False),
        Binding("f5", "switch_mode('train')", "Train screen", priority=True,
                show=False),
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+n", "new", "New", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    analysis: reactive[Analysis | None] = reactive(None, always_update=True)
    dirty: reactive[bool] = reactive(False)
    step_vertex = None    # (node, t, T) the Step screen is at: the Unroll screen's cursor goes there

    def __init__(self, path: str | None = None, text: str | None = None) -> None:
        super().__init__()
        self.document = Document.open(path)
        if text is None:
            text = self.document.saved or TEMPLATES["elman"][1]
            if path is None:  # an untitled spec from the template: nothing to lose yet
                self.document.saved = text
        self.spec_text = text
        self._timer = None
        self._backup_timer = None
        self._backup_failed = False
        self._offering_backup = False   # an earlier session's backup awaits an answer: keep it
        self._generation = 0
        # The first analysis runs here, synchronously, so every screen starts with a graph.
        first = analyse(text, self.document.path)
        self.last_valid: Analysis | None = first if first.ok else None
        self.set_reactive(RnnGraphApp.analysis, first)
        self.set_reactive(RnnGraphApp.dirty, text != self.document.saved)

    # -- state ------------------------------------------------------------------
    @property
    def edit_screen(self) -> EditScreen:
        return self.get_screen_stack("edit")[0]

    def notify(self, message: str, **kwargs) -> None:
        """Notifications are plain text: they carry paths, names and errors with brackets."""
        kwargs.setdefault("markup", False)
        super().notify(message, **kwargs)

    def on_mount(self) -> None:
        self._update_title()
        if not self.is_headless:
            self._flush_on_signals()
        pending = self.document.pending_backup()
        if pending is not None:
            self._offering_backup = True
            self.call_after_refresh(self._offer_backup, *pending)

    def _watch_analysis(self, analysis: Analysis | None) -> None:
        # runs before the screens' watchers, so they see the new last valid analysis
        if analysis is not None and analysis.ok:
            self.last_valid = analysis

    @property
    def picture_analysis(self) -> Analysis | None:
        """What the pictures show: the last valid analysis (the current one until there is one).

        An invalid edit leaves the pictures as they were; the problems are listed instead.
        """
        return self.last_valid if self.last_valid is not None else self.analysis

    @property
    def picture_is_stale(self) -> bool:
        """The text has problems, so the pictures show an earlier (valid) version."""
        return self.analysis is not None and self.picture_analysis is not self.analysis

    def watch_dirty(self, dirty: bool) -> None:
        self._update_title()

    def _update_title(self) -> None:
        self.sub_title = self.document.name + (" *" if self.dirty else "")

    def text_changed(self, text: str) -> None:
        """The editor's text changed: mark dirty now, validate and back up after a pause."""
        if text == self.spec_text and self.analysis is not None and self.analysis.text == text:
            return
        self.spec_text = text
        self.dirty = text != self.document.saved
        self._generation += 1
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(DEBOUNCE, self._start_analysis)
        if self._backup_timer is not None:
            self._backup_timer.stop()
        self._backup_timer = self.set_timer(BACKUP_DELAY, self.write_backup)

    def _start_analysis(self) -> None:
        self._timer = None
        self._analyse(self._generation, self.spec_text, self.document.path)

    @work(thread=True, exclusive=True, group="analysis")
    def _analyse(self, generation: int, text: str, path: str | None) -> None:
        result = analyse(text, path)
        self.call_from_thread(self._analysed, generation, result)

    def _analysed(self, generation: int, result: Analysis) -> None:
        if generation == self._generation:
            self.analysis = result

    def analyse_now(self) -> None:
        """Validate the current text at once (tests, and before running things)."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        self.analysis = analyse(self.spec_text, self.document.path)

    # -- backup of unsaved edits ----------------------------------------------------------
    def write_backup(self) -> None:
        """Back up the text now if it has unsaved edits (else forget the backup)."""
        if self._backup_timer is not None:
            self._backup_timer.stop()
            self._backup_timer = None
        if self._offering_backup:   # not a word about the old backup until the user answers
            return
        if self.spec_text == self.document.saved:
            self.document.remove_backup()
            return
        try:
            self.document.write_backup(self.spec_text)
        except OSError as err:
            if not self._backup_failed:   # say it once, not at every keystroke
                self._backup_failed = True
                self.notify(f"cannot back up unsaved edits: {err}", severity="warning")
            return
        self._backup_failed = False

    def _forget_backup(self) -> None:
        if self._backup_timer is not None:
            self._backup_timer.stop()
            self._backup_timer = None
        if not self._offering_backup:
            self.document.remove_backup()

    def _offer_backup(self, path: str, text: str) -> None:
        def answered(restore: bool | None) -> None:
            self._offering_backup = False
            if restore:
                self.edit_screen.set_text(text)   # one undoable edit: Ctrl+Z gives the file back
                self.notify("unsaved edits restored (not saved yet)")
            else:
                self.document.remove_backup()
        self.push_screen(RestoreDialog(self.document.name, path, self.document.saved, text), answered)

    def _flush_on_signals(self) -> None:
        """SIGTERM and SIGHUP (a closed terminal) back up the edits, then quit.

        The handler runs in the main thread between two Python instructions, whatever
        the event loop is busy with: it asks the app to quit through the loop and, in
        case the app still runs ``SIGNAL_GRACE`` seconds later, a timer thread backs up
        the edits and ends the process.
        """
        loop = asyncio.get_running_loop()

        def handler(signum, frame) -> None:
            self._end_after_grace()
            try:
                loop.call_soon_threadsafe(self._terminated)
            except RuntimeError:    # the loop has closed: the app is ending anyway
                pass

        previous = {}
        try:
            for sig in (signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, handler)
        except (ValueError, AttributeError, OSError):
            pass   # no signals here (another platform, or not the main thread)
        self._signal_handlers = previous

    _signal_handlers: dict = {}   # signal -> the handler to put back when the app ends

    def on_unmount(self) -> None:
        for sig, previous in self._signal_handlers.items():
            signal.signal(sig, previous)
        self._signal_handlers = {}

    def _end_after_grace(self) -> None:
        if self._hard_exit is not None:
            return
        self._hard_exit = threading.Timer(SIGNAL_GRACE, self._end_now)
        self._hard_exit.daemon = True       # a clean exit in time does not wait for it
        self._hard_exit.start()

    _hard_exit: threading.Timer | None = None

    def _end_now(self) -> None:
        """The app did not quit after a signal: back up, give the terminal back, exit 1."""
        try:
            if not self._offering_backup and self.spec_text != self.document.saved:
                self.document.write_backup(self.spec_text)
        except OSError:
            pass
        try:
            if self._driver is not None:
                self._driver.stop_application_mode()
        except Exception:   # the terminal may be gone (SIGHUP): exit all the same
            pass
        os._exit(1)

    def _terminated(self) -> None:
        self.write_backup()
        self.workers.cancel_all()
        self.exit(return_code=1)

    @property
    def good_analysis(self) -> Analysis | None:
        """The latest analysis, if the engine built a network from it."""
        a = self.analysis
        return a if a is not None and a.net is not None and not a.problems else None

    @property
    def runnable_analysis(self) -> Analysis | None:
        """The last analysis with a network (the current one, or the last valid)."""
        for a in (self.good_analysis, self.last_valid):
            if a is not None and a.net is not None and not a.problems:
                return a
        return None

    # -- actions ------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action in ("switch_mode", "save", "new", "help") and isinstance(self.screen, ModalScreen):
            return False
        return True

    def action_help(self) -> None:
        mode = self.current_mode
        self.push_screen(HelpDialog(mode.capitalize(), screen_keys(self.screen),
                                    SCREEN_NOTES.get(mode, ""), typing=typing_focus(self.screen)))

    def action_save(self) -> None:
        if self.document.path:
            self._save(self.document.path)
            return

        def chosen(path: str | None) -> None:
            if not path:
                return
            path = os.path.expanduser(path)
            if os.path.isdir(path):
                self.notify(f"{path} is a directory: give a file name", severity="error")
                return
            if os.path.exists(path):
                def overwrite(yes: bool | None) -> None:
                    if yes:
                        self._save(path)
                self.push_screen(ConfirmDialog(f"{path} exists. Replace it?", yes="Replace"),
                                 overwrite)
                return
            self._save(path)
        self.push_screen(PromptDialog("Save as (path):", "network.yaml"), chosen)

    def _save(self, path: str) -> None:
        before = self.document.backup_paths()
        try:
            self.document.save(self.spec_text, path)
        except OSError as err:
            self.notify(f"could not save {path}: {err}", severity="error")
            return
        self._forget_backup()
        for old in before:          # a save under a new name: the old backup goes too
            if old not in self.document.backup_paths():
                remove_file(old)
        self.dirty = False
        self._update_title()
        self.notify(f"saved {path}")

    def action_new(self) -> None:
        def picked(key: str | None) -> None:
            if key is None:
                return
            self._forget_backup()     # the edits were discarded
            self.document = Document(path=None, saved="")
            self.edit_screen.load_text(TEMPLATES[key][1])
            self._update_title()
            self.analyse_now()

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.push_screen(TemplateDialog(), picked)

        if self.dirty:
            self.push_screen(ConfirmDialog("Discard unsaved edits and start a new spec?"), confirmed)
        else:
            confirmed(True)

    async def action_quit(self) -> None:
        if not self.dirty:
            self._forget_backup()
            self.exit(0)
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self._forget_backup()   # a clean quit that discards the edits
                self.exit(0)
        self.push_screen(ConfirmDialog("Quit and lose unsaved edits?", yes="Quit"), confirmed)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title != "Keys":     # Textual's key panel: ours below lists this screen's
                yield command
        yield SystemCommand("Edit screen", "The YAML and the folded graph (F2)",
                            lambda: self.switch_mode("edit"))
        yield SystemCommand("Unroll screen", "The time-indexed DAG (F3)",
                            lambda: self.switch_mode("unroll"))
        yield SystemCommand("Step screen", "Values flowing step by step (F4)",
                            lambda: self.switch_mode("step"))
        yield SystemCommand("Train screen", "Train with a live loss plot (F5)",
                            lambda: self.switch_mode("train"))
        yield SystemCommand("Save", "Save the spec (Ctrl+S)", self.action_save)
        yield SystemCommand("New spec from template", "Start from a family (Ctrl+N)", self.action_new)
        yield SystemCommand("Keys", "The keys of this screen and what it shows (F1, ?)",
                            self.action_help)
        if isinstance(screen, EditScreen):
            yield SystemCommand("Add node", "Form for a new node (F6)", screen.action_add_node)
            yield SystemCommand("Add edge", "Form for a new edge (F7)", screen.action_add_edge)
            yield SystemCommand("Add block", "Form for an lstm/gru block (F8)", screen.action_add_block)
            yield SystemCommand("Change selected", "Edit the selected node or edge (F9)",
                                screen.action_edit_selected)
            yield SystemCommand("Remove selected", "Remove the selected node or edge (F10)",
                                screen.action_remove_selected)
            yield SystemCommand("Maximize the picture", "The folded graph alone on the screen (Esc: back)",
                                screen.action_maximize_picture)
            yield SystemCommand("Show or fold the tables", "Edges, Nodes, Inspector (Ctrl+T)",
                                screen.action_toggle_tables)
            yield SystemCommand("Wider editor", "Move the split right (Alt+→, or drag the bar)",
                                lambda: screen.action_resize_split(4))
            yield SystemCommand("Narrower editor", "Move the split left (Alt+←, or drag the bar)",
                                lambda: screen.action_resize_split(-4))
            yield SystemCommand("Undo", "Undo the last edit (Ctrl+Z)", screen.action_undo)
            yield SystemCommand("Redo", "Redo (Ctrl+Y)", screen.action_redo)


def run(path: str | None = None) -> int:
    """Open the TUI on ``path`` (a new spec when None); the exit status."""
    app = RnnGraphApp(path)
    app.run()
    return int(app.return_code or 0)
