"""Crash-safe file writes (fileio), called directly: a reader sees the old file or the new
one, never a mix; a failed write leaves the old content and no temp file behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from marketpredictor_train.fileio import (
    atomic_write_bytes,
    atomic_write_text,
    atomic_writer,
    fsync_dir,
    write_temp_file,
)


def leftovers(folder: Path) -> list[str]:
    """Temp files (hidden, ``.tmp``) that a write left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class Boom(Exception):
    pass


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of this test's own (tmp_path also holds the working directory)."""
    out = tmp_path / "out"
    out.mkdir()
    return out


@pytest.fixture
def umask_077():
    """A strict umask, so 0644 can only come from the code setting it."""
    old = os.umask(0o077)
    yield
    os.umask(old)


# ----------------------------------------------------------------- atomic_writer


def test_new_content_replaces_the_file_when_the_block_finishes(folder: Path):
    target = folder / "model.bin"
    target.write_bytes(b"old content")
    with atomic_writer(target) as fh:
        fh.write(b"new ")
        fh.write(b"content")
    assert target.read_bytes() == b"new content"
    assert leftovers(folder) == []


def test_the_old_content_stays_visible_until_the_block_finishes(folder: Path):
    """Writes go to a temp file beside the target; the target is untouched meanwhile."""
    target = folder / "model.bin"
    target.write_bytes(b"old")
    with atomic_writer(target) as fh:
        fh.write(b"new, not yet committed")
        fh.flush()
        assert target.read_bytes() == b"old"
        (name,) = leftovers(folder)  # in the same folder, so os.replace is one rename
        assert name.startswith(".model.bin.")
        temp = folder / name
        assert temp.read_bytes() == b"new, not yet committed"
    assert target.read_bytes() == b"new, not yet committed"
    assert not temp.exists()


def test_the_file_is_replaced_not_rewritten_in_place(folder: Path):
    """A reader that opened the old file keeps reading the old file (a new inode takes
    the name), instead of seeing it truncated and half rewritten."""
    target = folder / "data.json"
    target.write_bytes(b'{"v": 1}')
    old_inode = target.stat().st_ino
    with target.open("rb") as reader:
        atomic_write_bytes(target, b'{"v": 2, "more": true}')
        assert reader.read() == b'{"v": 1}'
    assert target.stat().st_ino != old_inode
    assert target.read_bytes() == b'{"v": 2, "more": true}'


def test_an_error_in_the_block_keeps_the_old_content_and_removes_the_temp_file(folder: Path):
    target = folder / "model.bin"
    target.write_bytes(b"old content")
    with pytest.raises(Boom), atomic_writer(target) as fh:
        fh.write(b"half of the new")
        raise Boom
    assert target.read_bytes() == b"old content"
    assert leftovers(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == ["model.bin"]


def test_an_error_writing_a_new_file_leaves_no_file_at_all(folder: Path):
    target = folder / "new.bin"
    with pytest.raises(Boom), atomic_writer(target) as fh:
        fh.write(b"partial")
        raise Boom
    assert not target.exists()
    assert list(folder.iterdir()) == []


def test_an_interrupt_in_the_block_also_cleans_up(folder: Path):
    """Ctrl-C (KeyboardInterrupt, not an Exception) must not leave a temp file either."""
    target = folder / "model.bin"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_writer(target) as fh:
        fh.write(b"new")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"old"
    assert leftovers(folder) == []


def test_a_failing_rename_removes_the_temp_file(folder: Path):
    """When the final os.replace fails (here: the name is a non-empty folder) the error
    reaches the caller and the written temp file does not stay behind."""
    target = folder / "taken"
    target.mkdir()
    (target / "inside").write_text("x")
    with pytest.raises(OSError), atomic_writer(target) as fh:
        fh.write(b"new")
    assert target.is_dir() and (target / "inside").read_text() == "x"
    assert leftovers(folder) == []


def test_missing_parent_folders_are_created(folder: Path):
    target = folder / "a" / "b" / "c" / "report.json"
    atomic_write_bytes(target, b"{}")
    assert target.read_bytes() == b"{}"


def test_a_str_path_is_accepted(folder: Path):
    target = folder / "sub" / "plain.txt"
    with atomic_writer(str(target)) as fh:  # type: ignore[arg-type]
        fh.write(b"ok")
    assert target.read_bytes() == b"ok"


def test_written_files_are_0644_whatever_the_umask(folder: Path, umask_077):
    """mkstemp makes 0600 files; what mptrain writes must be readable by other users
    (model files served by another account, reports)."""
    fresh = folder / "fresh.bin"
    atomic_write_bytes(fresh, b"x")
    assert mode_of(fresh) == 0o644
    private = folder / "private.txt"
    private.write_text("old")
    private.chmod(0o600)
    atomic_write_text(private, "new")
    assert mode_of(private) == 0o644


def test_text_mode_with_an_encoding(folder: Path):
    target = folder / "notes.md"
    with atomic_writer(target, "w", encoding="utf-16") as fh:
        fh.write("Zürich")
    assert target.read_text(encoding="utf-16") == "Zürich"


# ----------------------------------------------------------------- helpers


def test_atomic_write_text_writes_utf8(folder: Path):
    target = folder / "deep" / "report.md"
    text = "Résumé – 5 € | ✓\nsecond line\n"
    atomic_write_text(target, text)
    assert target.read_bytes() == text.encode("utf-8")
    atomic_write_text(target, "shorter")
    assert target.read_text(encoding="utf-8") == "shorter"  # replaced, not overwritten


def test_atomic_write_bytes_writes_exactly_the_bytes(folder: Path):
    target = folder / "payload.bin"
    data = bytes(range(256)) * 64
    atomic_write_bytes(target, data)
    assert target.read_bytes() == data
    atomic_write_bytes(target, b"")
    assert target.read_bytes() == b""
    assert leftovers(folder) == []


def test_write_temp_file_leaves_a_complete_hidden_file_and_not_the_target(folder: Path, umask_077):
    """For callers that name the file themselves (a hard link): the data is all there,
    readable (0644), hidden with a .tmp suffix, and the target name is not created."""
    temp = write_temp_file(folder, "v0003.mptm", b"model bytes")
    assert temp.parent == folder
    assert temp.name.startswith(".v0003.mptm.") and temp.name.endswith(".tmp")
    assert temp.read_bytes() == b"model bytes"
    assert mode_of(temp) == 0o644
    assert not (folder / "v0003.mptm").exists()
    second = write_temp_file(folder, "v0003.mptm", b"other")
    assert second != temp and temp.read_bytes() == b"model bytes"  # unique names


def test_write_temp_file_needs_an_existing_folder(folder: Path):
    """Unlike atomic_writer it creates no folders: the caller names a folder it uses."""
    with pytest.raises(FileNotFoundError):
        write_temp_file(folder / "missing", "x", b"data")
    assert list(folder.iterdir()) == []


def test_fsync_dir_is_a_no_op_where_it_cannot_work(folder: Path):
    """A folder is synced; a missing path or a plain file is quietly skipped."""
    fsync_dir(folder)
    fsync_dir(folder / "missing")
    plain = folder / "file.txt"
    plain.write_text("x")
    fsync_dir(plain)
    assert plain.read_text() == "x"
