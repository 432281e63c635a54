"""The trainers' workshop: edit prompts and checker rules safely, with validation, history, diff and restore.

No Gradio here: the UI (and tests) call these functions; every edit is validated against the whole library in a
temporary copy before anything on disk changes, so a broken edit never reaches the running copilot.
"""

from __future__ import annotations

import contextlib
import copy as copy_module
import difflib
import hmac
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from copilot.checker import Checker
from copilot.errors import CopilotError, DataFileError
from copilot.examples import example_values
from copilot.prompts import SUPPLIED_INPUTS, PromptLibrary, check_library, load_type_guidance, parse_prompt
from copilot.settings import Settings

if TYPE_CHECKING:
    from copilot.assembly import Assembly
    from copilot.evaluation import Report

DISABLED_MESSAGE = (
    "The workshop is switched off: no trainer login is configured. Set COPILOT_WORKSHOP_USER and "
    "COPILOT_WORKSHOP_PASSWORD (or workshop_user / workshop_password in the settings file) and restart the app."
)
_VERSION = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")
_TITLE = re.compile(r'^title:\s*"?(.*?)"?\s*$', re.MULTILINE)
# How many of evals/drafts.yaml's messages a prompt comparison drafts with each version.
COMPARE_DRAFTS_LIMIT = 3
NEEDS_MODEL_MESSAGE = (
    "Comparing prompts needs the model: the drafts suite writes replies with each version, and no model is "
    "running in this session. Below is what changes in what the model would receive for the sample message."
)


def workshop_enabled(settings: Settings) -> bool:
    """True when trainer credentials are configured (without them nothing can be changed)."""
    return (
        bool(settings.workshop_user)
        and settings.workshop_password is not None
        and bool(settings.workshop_password.get_secret_value())
    )


def authorize(settings: Settings, user: str | None, password: str | None) -> bool:
    """Check trainer credentials in constant time; always False when none are configured."""
    if not workshop_enabled(settings) or settings.workshop_password is None or settings.workshop_user is None:
        return False
    # Compare both parts every time so the answer's timing does not reveal which one was wrong.
    user_ok = hmac.compare_digest((user or "").encode("utf-8"), settings.workshop_user.encode("utf-8"))
    password_ok = hmac.compare_digest(
        (password or "").encode("utf-8"), settings.workshop_password.get_secret_value().encode("utf-8")
    )
    return user_ok and password_ok


@dataclass(frozen=True)
class SaveResult:
    """What a save or restore did: `changed` is False when the text was identical."""

    relpath: str
    changed: bool
    message: str
    previous_version: str | None = None


@dataclass(frozen=True)
class Comparison:
    """The edited text of a file against the saved one on the suite that file affects; nothing is saved.

    `edited` and `saved` are None when the suite could not run (a prompt without a model): `note` says why and
    `preview_diff` shows what changes in what the model would receive instead.
    """

    relpath: str
    suite: str
    verdict: str
    edited: Report | None = None
    saved: Report | None = None
    note: str = ""
    preview_diff: str = ""

    @property
    def ran(self) -> bool:
        """True when both versions were evaluated."""
        return self.edited is not None and self.saved is not None

    def changes(self) -> list[tuple[str, str, float, float]]:
        """(suite, metric, saved value, edited value) for every metric the edit moved (timings left out)."""
        if self.edited is None or self.saved is None:
            return []
        saved = {s.name: s.metrics for s in self.saved.suites}
        moved = []
        for suite in self.edited.suites:
            for metric, value in suite.metrics.items():
                before = saved.get(suite.name, {}).get(metric)
                if before is not None and not metric.endswith("_ms") and abs(value - before) > 1e-9:
                    moved.append((suite.name, metric, before, value))
        return moved

    def markdown(self) -> str:
        """The side-by-side table of both versions (our own generated text), or the note."""
        from copilot.evaluation import render_markdown

        if self.edited is None or self.saved is None:
            return self.note
        return render_markdown(self.edited, self.saved)


def suite_for(relpath: str) -> str:
    """The eval suite an edit of this file can move: checker rules, synonyms (retrieval), or prompts (drafts)."""
    if relpath.startswith("checker/"):
        return "checker"
    if relpath == "synonyms.yaml":
        return "retrieval"
    return "drafts"


def comparison_verdict(suite: str, edited: Report, saved: Report) -> str:
    """One line: the thresholds the edited version would fail (and whether the saved one fails them too)."""
    was_failing = {c.metric for s in saved.suites for c in s.checks if not c.passed}
    failing = [c for s in edited.suites for c in s.checks if not c.passed]
    if not failing:
        return f"✅ The edited version passes every {suite} threshold."
    parts = [c.describe() + (" (the saved version fails it too)" if c.metric in was_failing else "") for c in failing]
    return f"❌ The edited version would fail {len(failing)} {suite} threshold(s): " + "; ".join(parts) + "."


@dataclass(frozen=True)
class KnowledgeDocument:
    """A guidance document in the knowledge folder."""

    name: str
    title: str
    size: int


class Workshop:
    """Edits the files in the prompts folder; `on_saved` lets the running app reload what changed."""

    def __init__(self, settings: Settings, on_saved: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.root = settings.prompts_dir
        self.history_dir = settings.data_dir / "history"
        self.on_saved = on_saved
        self._lock = threading.Lock()

    # ----- listing and reading ---------------------------------------------------------------------------------

    def files(self) -> list[str]:
        """Editable files, relative to the prompts folder: prompts, customer types, then checker rules."""
        prompts = sorted(p.name for p in self.root.glob("*.md") if p.stem in SUPPLIED_INPUTS)
        types = ["customer_types.yaml"] if (self.root / "customer_types.yaml").is_file() else []
        synonyms = ["synonyms.yaml"] if (self.root / "synonyms.yaml").is_file() else []
        rules = sorted(f"checker/{p.name}" for p in (self.root / "checker").glob("*.yaml"))
        return prompts + types + synonyms + rules

    def path_of(self, relpath: str) -> Path:
        """The file behind a relative path; only files from `files()` are accepted, so no path can escape."""
        if relpath not in self.files():
            raise CopilotError(f"{relpath!r} is not an editable file.", fix=f"choose one of: {', '.join(self.files())}")
        return self.root / relpath

    def read(self, relpath: str) -> str:
        """The current text of an editable file."""
        return self.path_of(relpath).read_text(encoding="utf-8")

    # ----- validation and saving -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def edited_copy(self, relpath: str, new_text: str) -> Iterator[Path]:
        """A temporary copy of the prompts folder with `new_text` in place of `relpath`, removed afterwards."""
        self.path_of(relpath)
        with tempfile.TemporaryDirectory(prefix="copilot-workshop-") as tmp:
            copy = Path(tmp) / self.root.name
            shutil.copytree(self.root, copy)
            # The checker looks for rule sources in ../knowledge next to the prompts folder; mirror that.
            knowledge = self.root.resolve().parent / "knowledge"
            if knowledge.is_dir():
                (Path(tmp) / "knowledge").symlink_to(knowledge, target_is_directory=True)
            (copy / relpath).write_text(new_text, encoding="utf-8")
            yield copy

    def validate(self, relpath: str, new_text: str) -> None:
        """Raise DataFileError unless the whole library is valid with `new_text` in place of `relpath`."""
        with self.edited_copy(relpath, new_text) as copy:
            self._validate_named(copy)

    def _validate_named(self, copy: Path) -> None:
        """Validate an edited copy, naming the real file (not the temporary copy) in any error."""
        try:
            self._validate_copy(copy)
        except DataFileError as exc:
            # Name the real file, not the temporary copy, so the trainer can find the spot.
            real = str(exc.path).replace(str(copy.resolve()), str(self.root)).replace(str(copy), str(self.root))
            where = f"{exc.path}:{exc.line}: " if exc.line else f"{exc.path}: "
            message = exc.message[len(where) :] if exc.message.startswith(where) else exc.message
            raise DataFileError(real, message, line=exc.line, fix=exc.fix) from exc

    @staticmethod
    def _validate_copy(copy: Path) -> None:
        problems = check_library(copy)
        if problems:
            raise problems[0]
        load_type_guidance(copy / "customer_types.yaml")
        from copilot.retrieval import Thesaurus

        Thesaurus.load(copy / "synonyms.yaml")
        checker = Checker.load(copy / "checker")
        failures = checker.self_test()
        if failures:
            first = failures[0]
            name, line = (first.split(":", 2) + ["", ""])[:2]
            raise DataFileError(
                copy / "checker" / name,
                first.split(": ", 1)[1] if ": " in first else first,
                line=int(line) if line.isdigit() else None,
                fix="change the rule's patterns or its examples so every example is handled as labelled"
                + (f" ({len(failures) - 1} more example(s) fail too)" if len(failures) > 1 else ""),
            )

    def save(self, relpath: str, new_text: str) -> SaveResult:
        """Validate, keep the previous version in history, then replace the file atomically."""
        new_text = new_text.replace("\r\n", "\n")
        with self._lock:
            path = self.path_of(relpath)
            old_text = path.read_text(encoding="utf-8")
            if old_text == new_text:
                return SaveResult(relpath, False, f"{relpath}: no changes to save.")
            self.validate(relpath, new_text)
            version = self._store_history(relpath, old_text)
            atomic_write(path, new_text)
        if self.on_saved is not None:
            self.on_saved(relpath)
        return SaveResult(relpath, True, f"Saved {relpath}; the previous version is kept as {version}.", version)

    def _store_history(self, relpath: str, text: str) -> str:
        folder = self.history_dir / relpath
        folder.mkdir(parents=True, exist_ok=True)
        version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        while (folder / f"{version}.txt").exists():  # pragma: no cover - same microsecond
            version = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        atomic_write(folder / f"{version}.txt", text)
        return version

    # ----- history ---------------------------------------------------------------------------------------------

    def history(self, relpath: str) -> list[str]:
        """Stored earlier versions of a file, newest first."""
        self.path_of(relpath)
        folder = self.history_dir / relpath
        if not folder.is_dir():
            return []
        return sorted((p.stem for p in folder.glob("*.txt") if _VERSION.match(p.stem)), reverse=True)

    def version_text(self, relpath: str, version: str) -> str:
        """The text of one stored version."""
        if version not in self.history(relpath):
            raise CopilotError(
                f"No stored version {version!r} of {relpath}.", fix="pick a version from the history list"
            )
        return (self.history_dir / relpath / f"{version}.txt").read_text(encoding="utf-8")

    def diff(self, relpath: str, version: str) -> str:
        """Unified diff from a stored version to the current file."""
        old = self.version_text(relpath, version)
        new = self.read(relpath)
        lines = difflib.unified_diff(
            old.splitlines(keepends=True),
            new.splitlines(keepends=True),
            f"{relpath} @ {version}",
            f"{relpath} (current)",
        )
        return "".join(lines) or "(identical to the current file)"

    def restore(self, relpath: str, version: str) -> SaveResult:
        """Bring back a stored version through the same validation as a save (the current one goes to history)."""
        result = self.save(relpath, self.version_text(relpath, version))
        if not result.changed:
            return result
        return SaveResult(relpath, True, f"Restored {relpath} to {version}. {result.message}", result.previous_version)

    # ----- comparing an edit with the saved version ------------------------------------------------------------

    def compare(self, relpath: str, new_text: str, assembly: Assembly | None = None) -> Comparison:
        """Evaluate the edited text against the saved file on the suite it affects; nothing is written.

        The edit is validated exactly like a save first (a DataFileError names the real file and line). Checker
        rules run the checker suite; synonyms the retrieval suite over the running assembly's index; prompts and
        customer types the drafts suite on the first few messages, when the assembly has a working model.
        """
        new_text = new_text.replace("\r\n", "\n")
        suite = suite_for(relpath)
        with self.edited_copy(relpath, new_text) as copy:
            self._validate_named(copy)
            if suite == "checker":
                edited, saved = self._compare_checker(copy)
            elif suite == "retrieval":
                edited, saved = self._compare_retrieval(copy, assembly)
            elif assembly is None or assembly.copilot.chat is None:
                return Comparison(
                    relpath,
                    suite,
                    "⚠️ Not compared: comparing prompts needs the model (see the rendered preview diff).",
                    note=NEEDS_MODEL_MESSAGE,
                    preview_diff=self._preview_diff(relpath, copy),
                )
            else:
                edited, saved = self._compare_drafts(copy, assembly)
        return Comparison(relpath, suite, comparison_verdict(suite, edited, saved), edited, saved)

    def _compare_checker(self, copy: Path) -> tuple[Report, Report]:
        from copilot.evaluation import run_suites

        edited_settings = self.settings.model_copy(update={"prompts_dir": copy})
        edited = run_suites(edited_settings, ["checker"], progress=False, label="edited")
        saved = run_suites(self.settings, ["checker"], progress=False, label="saved")
        return edited, saved

    def _compare_retrieval(self, copy: Path, assembly: Assembly | None) -> tuple[Report, Report]:
        from copilot.evaluation import Report, apply_thresholds, load_thresholds, run_retrieval_suite
        from copilot.retrieval import Retriever, Thesaurus

        if assembly is None or assembly.store is None or assembly.embedder is None:
            raise CopilotError(
                "Comparing synonyms needs the guidance index, which is not available in this session.",
                fix="restart the app with the index (see the startup notices)",
            )
        rules = load_thresholds(self.settings.evals_dir / "thresholds.yaml").retrieval
        reports = []
        for folder, label in ((copy, "edited"), (self.root, "saved")):
            retriever = Retriever(assembly.store, assembly.embedder, thesaurus=Thesaurus.load(folder / "synonyms.yaml"))
            result = run_retrieval_suite(self.settings, retriever, progress=False)
            reports.append(Report([apply_thresholds(result, rules)], label=label))
        return reports[0], reports[1]

    def _compare_drafts(self, copy: Path, assembly: Assembly) -> tuple[Report, Report]:
        from copilot.evaluation import Report, apply_thresholds, load_thresholds, run_drafts_suite

        rules = load_thresholds(self.settings.evals_dir / "thresholds.yaml").drafts
        reports = []
        for folder, label in ((copy, "edited"), (self.root, "saved")):
            # The running copilot (model, checker, retriever, sampling) with only the prompts swapped.
            copilot = copy_module.copy(assembly.copilot)
            copilot.prompts = PromptLibrary(folder)
            settings = self.settings.model_copy(update={"prompts_dir": folder})
            result = run_drafts_suite(settings, copilot, limit=COMPARE_DRAFTS_LIMIT, progress=False)
            reports.append(Report([apply_thresholds(result, rules)], label=label))
        return reports[0], reports[1]

    def _preview_diff(self, relpath: str, copy: Path) -> str:
        """What changes in what the model receives for the sample message, saved → edited."""
        prompt_ids = [relpath[:-3]] if relpath.endswith(".md") else sorted(PromptLibrary.REQUIRED)
        saved_library, edited_library = PromptLibrary(self.root), PromptLibrary(copy)
        parts = []
        for prompt_id in prompt_ids:
            lines = difflib.unified_diff(
                _rendered(saved_library, prompt_id).splitlines(keepends=True),
                _rendered(edited_library, prompt_id).splitlines(keepends=True),
                f"{prompt_id} (saved)",
                f"{prompt_id} (edited)",
            )
            parts.append("".join(lines))
        return "".join(parts) or "(what the model receives does not change for the sample message)"

    # ----- preview and knowledge -------------------------------------------------------------------------------

    def preview(self, prompt_id: str, text: str) -> str:
        """What the model would receive from this (possibly unsaved) prompt text for the sample message."""
        path = self.root / f"{prompt_id}.md"
        prompt = parse_prompt(path, text)
        library = PromptLibrary(self.root)
        library.prompts = dict(library.prompts, **{prompt_id: prompt})
        return _rendered(library, prompt_id)

    def knowledge_documents(self) -> list[KnowledgeDocument]:
        """The guidance documents the index is built from."""
        documents = []
        for path in sorted(self.settings.knowledge_dir.glob("*.md")):
            text = path.read_text(encoding="utf-8", errors="replace")
            match = _TITLE.search(text[:2000])
            documents.append(KnowledgeDocument(path.name, match.group(1) if match else path.stem, path.stat().st_size))
        return documents


def _rendered(library: PromptLibrary, prompt_id: str) -> str:
    """A prompt of the library rendered for the sample message, as the model would receive it."""
    prompt = library.get(prompt_id)
    system, user = prompt.render(example_values(library, prompt_id))
    return f"# system\n{system}\n\n# user\n{user}"


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a crash leaves the old file or the new one, never half of either."""
    # A temporary file in the same folder, fsynced, then os.replace: readers see the old or the new file, never half.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
