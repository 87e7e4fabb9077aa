"""Never clobber a run: one run at a time on the same outputs, a killed run leaves no lock, and a
fresh run keeps the files it replaces."""
import os
import time

import pytest
from background_runs import digest, finish, paused, read_text, start
from conftest import run_entry

from src.errors import UserError
from src.run import output_guard
from src.run.output_guard import OutputLock, set_aside
from src.storage.run_files import run_files

CHECKPOINTS = ("r8.ckpt", "r8-best.ckpt", "r8-last.ckpt")


def wait_for(condition, proc, what):
    deadline = time.monotonic() + 300
    while not condition():
        assert proc.poll() is None and time.monotonic() < deadline, (what, read_text(proc.err_path))
        time.sleep(0.05)


def holds_its_lock(folder, proc):
    """The run's lock file names the run's process: it holds its outputs."""
    lock = os.path.join(folder, ".r8.lock")
    return os.path.isfile(lock) and read_text(lock) == f"process {proc.pid}"


def test_the_lock_excludes_a_second_holder_until_released(tmp_path):
    files = run_files(str(tmp_path), "x.ckpt", str(tmp_path), "x.log")
    first = OutputLock(files).acquire()
    with pytest.raises(UserError, match=rf"^another run is writing .*x\.ckpt and its -last/-best "
                                        rf"checkpoints \(process {os.getpid()}\): wait for it to end"):
        OutputLock(files).acquire()
    first.release()
    assert not os.path.exists(files.lock())
    OutputLock(files).acquire().release()


def test_a_run_that_locks_the_file_an_ending_run_removed_holds_the_outputs(tmp_path, monkeypatch):
    """The lock-and-unlink race, step by step: B opens the lock file while A holds it, A ends (lets
    go and removes the file), then B locks the file it opened. B must end up holding the outputs, not
    a file without a name: C, started while B runs, is refused."""
    files = run_files(str(tmp_path), "x.ckpt", str(tmp_path), "x.log")
    a = OutputLock(files).acquire()
    opened_by_b = [output_guard.open_lock_file(files.lock())]
    a.release()
    opening = output_guard.open_lock_file
    monkeypatch.setattr(output_guard, "open_lock_file",
                        lambda path: opened_by_b.pop() if opened_by_b else opening(path))
    b = OutputLock(files).acquire()
    with pytest.raises(UserError, match=rf"^another run is writing .*\(process {os.getpid()}\)"):
        OutputLock(files).acquire()
    b.release()
    assert not os.path.exists(files.lock())


def test_a_run_starting_as_another_removes_its_lock_file_leaves_one_writer(tmp_path, monkeypatch):
    """B tries the outputs at the moment A, ending, removes the lock file; then C does: exactly one of
    B and C holds them (B refused while A still holds the file, or C refused while B does)."""
    files = run_files(str(tmp_path), "x.ckpt", str(tmp_path), "x.log")
    a = OutputLock(files).acquire()
    b = []
    removing = os.remove

    def b_starts_first(path):
        b.append(_try_acquire(files))
        removing(path)

    monkeypatch.setattr(os, "remove", b_starts_first)
    a.release()
    monkeypatch.undo()
    c = _try_acquire(files)
    assert (b[0] is None) != (c is None)
    (b[0] or c).release()


@pytest.mark.skipif(os.name == "nt", reason="Windows removes no open file")
def test_a_lock_file_removed_each_time_before_it_is_locked_ends_in_a_refusal(tmp_path, monkeypatch):
    """As if a run ended between every opening of the lock file and its locking: a bounded number of
    tries, then the one-line refusal (no holder to name)."""
    files = run_files(str(tmp_path), "x.ckpt", str(tmp_path), "x.log")
    opening = output_guard.open_lock_file

    def opened_then_removed(path):
        handle = opening(path)
        os.remove(path)
        return handle

    monkeypatch.setattr(output_guard, "open_lock_file", opened_then_removed)
    with pytest.raises(UserError, match=r"^another run is writing .*x\.ckpt and its -last/-best "
                                        r"checkpoints: wait for it to end"):
        OutputLock(files).acquire()


def _try_acquire(files):
    try:
        return OutputLock(files).acquire()
    except UserError:
        return None


def test_a_second_run_on_the_same_outputs_stops_and_the_first_is_untouched(cifar100_dir, tmp_path):
    """The second run exits 2 with one line before writing anything; the first ends with exactly the
    files a run alone writes (byte-identical, --deterministic)."""
    alone, shared = str(tmp_path / "alone"), str(tmp_path / "shared")
    reference = start(alone, cifar100_dir, "--epoches", 2, "--seed", 3)
    first = start(shared, cifar100_dir, "--epoches", 2, "--seed", 3)
    wait_for(lambda: holds_its_lock(shared, first), first, "the first run's lock")
    # Paused, the first still holds its outputs when the second tries them (unpaused, it could end
    # first: seen under Wine, whose slow start of the second took longer than the whole first run).
    with paused(first):
        second = start(shared, cifar100_dir, "--epoches", 2, "--seed", 4)
        _, err = finish(second, 2)
    ckpt = os.path.join(shared, "r8.ckpt")
    assert err == (f"run_classify.py: error: another run is writing {ckpt} and its -last/-best "
                   f"checkpoints (process {first.pid}): wait for it to end, or choose another "
                   f"--ckpt_name or --ckpt_dir\n")
    finish(first)
    finish(reference)
    for name in ("r8.ckpt", "r8-best.ckpt"):
        assert digest(os.path.join(shared, name)) == digest(os.path.join(alone, name)), name
    log = read_text(os.path.join(shared, "student-nokd.log"))
    assert log.count("[Epoch:") == 2 and log.count("# run started") == 1 and "seed: 3" in log
    assert sorted(os.listdir(shared)) == sorted(os.listdir(alone))   # no lock file, no replaced/


def test_a_killed_run_leaves_no_lock(cifar100_dir, tmp_path):
    """SIGKILL (TerminateProcess on Windows) after epoch 1: the same command with --resume auto
    continues at once."""
    folder = str(tmp_path / "run")
    proc = start(folder, cifar100_dir, "--epoches", 2, "--seed", 3)
    wait_for(lambda: "[Epoch:1]" in read_text(proc.out_path), proc, "epoch 1")
    proc.kill()
    proc.wait(timeout=60)
    resumed = start(folder, cifar100_dir, "--epoches", 2, "--seed", 3, "--resume", "auto")
    out, _ = finish(resumed)
    assert f"resumed from {os.path.join(folder, 'r8-last.ckpt')} after epoch 1" in out
    assert "[Epoch:2]" in out and not os.path.exists(os.path.join(folder, ".r8.lock"))


def test_a_fresh_run_keeps_what_it_replaces(cifar100_dir, tmp_path):
    folder = str(tmp_path / "run")
    finish(start(folder, cifar100_dir, "--epoches", 1, "--seed", 3))
    before = {name: digest(os.path.join(folder, name)) for name in CHECKPOINTS}
    out, _ = finish(start(folder, cifar100_dir, "--epoches", 1, "--seed", 4))
    (kept,) = os.listdir(os.path.join(folder, "replaced"))
    assert kept.startswith("r8-")
    kept = os.path.join(folder, "replaced", kept)
    assert sorted(os.listdir(kept)) == sorted(CHECKPOINTS + ("r8.metrics.jsonl", "r8.run.json"))
    assert {name: digest(os.path.join(kept, name)) for name in CHECKPOINTS} == before
    assert (f"a fresh run over an earlier run's files: moved r8.ckpt, r8-best.ckpt, r8-last.ckpt, "
            f"r8.run.json, r8.metrics.jsonl to {kept}") in out
    for name in CHECKPOINTS:     # the new run's own, in place
        assert os.path.isfile(os.path.join(folder, name)) and digest(os.path.join(folder, name)) != before[name]
    log = read_text(os.path.join(folder, "student-nokd.log"))
    assert log.count("# run started") == 2 and "seed: 3" in log and "seed: 4" in log   # appended


def test_set_aside_twice_in_one_second_keeps_both(tmp_path):
    import datetime
    now = datetime.datetime(2026, 12, 4, 19, 30, 5)
    for text in ("one", "two"):
        (tmp_path / "a.txt").write_text(text)
        set_aside([str(tmp_path / "a.txt"), str(tmp_path / "missing")], str(tmp_path), "a", now)
    assert sorted(os.listdir(tmp_path / "replaced")) == ["a-20261204-193005", "a-20261204-193005-2"]
    assert (tmp_path / "replaced" / "a-20261204-193005-2" / "a.txt").read_text() == "two"
    assert set_aside([str(tmp_path / "missing")], str(tmp_path), "a", now) is None


def test_export_keeps_the_earlier_export(cifar100_dir, tmp_path):
    folder = str(tmp_path / "run")
    finish(start(folder, cifar100_dir, "--epoches", 1, "--seed", 3))
    flags = ["--net", "ResNet", "--n_layer", 8, "--ckpt_dir", folder, "--ckpt_name", "r8.ckpt"]
    assert run_entry("export.py", *flags).returncode == 0
    first = digest(os.path.join(folder, "r8_mindir.mindir"))
    proc = run_entry("export.py", *flags)
    assert proc.returncode == 0, proc.stderr
    (kept,) = os.listdir(os.path.join(folder, "replaced"))
    assert digest(os.path.join(folder, "replaced", kept, "r8_mindir.mindir")) == first
    assert f"kept the earlier r8_mindir.mindir in {os.path.join(folder, 'replaced', kept)}" in proc.stderr


def test_tables_written_anew_keep_the_earlier_ones(tmp_path):
    """What analyze_teacher.py does before writing teacher_stats.csv/.json/.png/.pdf again."""
    from src.run.output_guard import keep_before_writing
    paths = [str(tmp_path / f"teacher_stats.{ext}") for ext in ("csv", "json", "png", "pdf")]
    for path in paths[:2]:
        with open(path, "w") as f:
            f.write(path)
    said = []
    keep_before_writing(paths, str(tmp_path), "teacher_stats", said.append)
    (kept,) = os.listdir(tmp_path / "replaced")
    folder = tmp_path / "replaced" / kept
    assert sorted(os.listdir(folder)) == ["teacher_stats.csv", "teacher_stats.json"]
    assert (folder / "teacher_stats.csv").read_text() == paths[0]
    assert said == [f"kept the earlier teacher_stats.csv, teacher_stats.json in {folder}"]
    assert sorted(os.listdir(tmp_path)) == ["replaced"]
