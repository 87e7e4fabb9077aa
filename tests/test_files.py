"""Output files replaced and removed alike on Windows and POSIX (read-only files, files open in another
program), and paths shown in the form the user writes them."""
import os
import stat
import subprocess
import sys

import numpy as np
import pytest

from src.errors import UserError
from src.storage.files import RETRY_PAUSES, remove_file, replace_file
from src.storage.user_paths import below_cwd, join


def write(path, text, read_only=False):
    with open(path, "w") as f:
        f.write(text)
    if read_only:
        os.chmod(path, stat.S_IREAD)


def read(path):
    with open(path) as f:
        return f.read()


def test_replace_clears_the_read_only_bit_first(tmp_path, monkeypatch):
    # Wine replaces a read-only file where Windows refuses (ERROR_ACCESS_DENIED): check the bit at
    # the moment of the replace, not only the result.
    target, new = str(tmp_path / "net.ckpt"), str(tmp_path / "new")
    write(target, "old", read_only=True)
    write(new, "new")
    real_replace, seen = os.replace, []

    def checking_replace(src, dst):
        seen.append(bool(os.stat(dst).st_mode & stat.S_IWRITE))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", checking_replace)
    replace_file(new, target)
    assert seen == [True] and read(target) == "new" and os.listdir(tmp_path) == ["net.ckpt"]


def test_remove_file_removes_a_read_only_file(tmp_path):
    path = str(tmp_path / "cell-last.ckpt")
    write(path, "state", read_only=True)     # as MindSpore writes it; sweep.py removes it
    remove_file(path)
    assert os.listdir(tmp_path) == []


@pytest.fixture
def held_open():
    """Opens a file in another process (as a viewer would) until the test ends."""
    procs = []

    def hold(path):
        holder = f"f = open({path!r}, 'rb'); print('open', flush=True); import sys; sys.stdin.read()"
        proc = subprocess.Popen([sys.executable, "-c", holder],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "open"
        procs.append(proc)

    yield hold
    for proc in procs:
        proc.communicate("", timeout=60)


def test_checkpoint_open_in_another_program(tmp_path, held_open):
    """Windows: after a short wait, one line naming the file; the previous checkpoint is intact and no
    temporary file is left. POSIX: replacing an open file is allowed."""
    from mindspore import nn

    from src.storage.checkpoint import read_checkpoint, save_atomic
    net = nn.Dense(3, 2)
    path = str(tmp_path / "net-last.ckpt")
    save_atomic(net, path, {"epoch": 1})
    held_open(path)
    if os.name != "nt":
        save_atomic(net, path, {"epoch": 2})
        assert read_checkpoint(path)[1] == {"epoch": 2}
        return
    with pytest.raises(UserError) as info:
        save_atomic(net, path, {"epoch": 2})
    assert str(info.value) == (f"{path} is open in another program, so Windows does not let it be "
                               f"replaced or deleted: close it and run again (the file is unchanged)")
    params, state = read_checkpoint(path)
    assert state == {"epoch": 1}
    np.testing.assert_array_equal(params["weight"].asnumpy(), net.weight.asnumpy())
    assert os.listdir(tmp_path) == ["net-last.ckpt"]      # MindSpore's read-only temporary is gone


def test_log_file_open_in_another_program(tmp_path, held_open, monkeypatch):
    from src.storage.files import write_text_atomic
    monkeypatch.setattr("src.storage.files.RETRY_PAUSES", RETRY_PAUSES[:1])
    path = str(tmp_path / "r8.metrics.jsonl")
    write_text_atomic(path, "epoch 1\n")
    held_open(path)
    if os.name == "nt":
        with pytest.raises(UserError, match="is open in another program"):
            write_text_atomic(path, "epoch 2\n")
        assert read(path) == "epoch 1\n"
    else:
        write_text_atomic(path, "epoch 2\n")
        assert read(path) == "epoch 2\n"
    assert os.listdir(tmp_path) == ["r8.metrics.jsonl"]


def test_paths_continue_in_the_users_form():
    assert join("./ckpts", "r8.ckpt") == "./ckpts/r8.ckpt"          # as typed in Git Bash or Linux
    assert join("ckpts", "r8.ckpt") == os.path.join("ckpts", "r8.ckpt")
    assert join(os.path.join("runs", "ckpts"), "r8.ckpt") == os.path.join("runs", "ckpts", "r8.ckpt")
    assert join("out/", "logs", "r8.log") == "out/logs/r8.log"
    assert below_cwd("ckpts") == f"{os.curdir}{os.sep}ckpts"
    if os.name == "nt":
        assert join(".\\ckpts", "r8.ckpt") == ".\\ckpts\\r8.ckpt"   # as typed in cmd
        assert join("C:\\Users\\me/runs", "logs", "r8.log") == "C:\\Users\\me/runs/logs/r8.log"
        assert join("C:/Users/me\\runs", "r8.log") == "C:/Users/me\\runs\\r8.log"
