"""The PyTorch converter: our networks reproduce PyTorch's logits from the authors' layout, and bad
.pth files are refused with one line. The fixtures come from tests/fixtures/make_torch_fixtures.py;
nothing here needs PyTorch."""
import os
import pickle
import pickletools
import struct
import zipfile

import numpy as np
import pytest
from conftest import run_entry

from src.errors import UserError

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
RESNET14 = os.path.join(FIXTURES, "ResNet14.pth")

# name in torch_logits.npz -> (fixture, convert_torch.py flags)
NETS = {
    "ResNet14": ("ResNet14.pth", ["--net", "ResNet", "--n_layer", "14"]),
    "VGG8": ("VGG8-fp16.pth", ["--net", "VGG", "--n_layer", "8"]),
    "WRN16-2": ("WRN16-2.pth", ["--net", "WRN", "--n_layer", "16", "--width", "2"]),
}


def rewrite_member(src, dst, suffix, edit):
    """Copy the zip ``src`` to ``dst`` with the member whose name ends with ``suffix`` edited."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            zout.writestr(item.filename, edit(data) if item.filename.endswith(suffix) else data)
    return dst


def rename_keys(renames):
    """An edit of data.pkl renaming state-dict keys (BINUNICODE strings; nothing refers to offsets)."""
    def edit(pkl):
        out, last, done = bytearray(), 0, 0
        for op, arg, pos in pickletools.genops(pkl):
            if op.name == "BINUNICODE" and arg in renames:
                new = renames[arg].encode()
                out += pkl[last:pos] + b"X" + struct.pack("<I", len(new)) + new
                last, done = pos + 5 + len(arg.encode()), done + 1
        assert done == len(renames)
        return bytes(out + pkl[last:])
    return edit


class Calls:
    """A pickle that calls ``func(arg)`` when loaded."""

    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return self.func, (self.arg,)


def test_tensors_keep_values_dtypes_offsets_and_strides():
    from src.nets.torch_checkpoint import read_state_dict
    state = read_state_dict(os.path.join(FIXTURES, "tensor_views.pth"))
    expected = np.load(os.path.join(FIXTURES, "tensor_views.npz"))
    assert sorted(state) == sorted(expected.files)
    for name in expected.files:
        assert state[name].dtype == expected[name].dtype, name
        assert state[name].shape == expected[name].shape, name
        np.testing.assert_array_equal(state[name], expected[name], err_msg=name)


@pytest.mark.parametrize("name", sorted(NETS))
def test_converted_checkpoint_reproduces_pytorch_logits(name, tmp_path):
    """convert_torch -> MindSpore checkpoint -> strict load into our network -> PyTorch's logits."""
    import mindspore as ms

    import convert_torch
    from src.nets.models import build_network
    from src.storage.checkpoint import load_into
    pth, flags = NETS[name]
    convert_torch.main([*flags, "--pth", os.path.join(FIXTURES, pth), "--ckpt_dir", str(tmp_path)])
    net = build_network(flags[1], int(flags[3]), 100, int(flags[5]) if "--width" in flags else 1)
    load_into(net, str(tmp_path / f"cifar100-{name}.ckpt"))
    net.set_train(False)
    ref = np.load(os.path.join(FIXTURES, "torch_logits.npz"))
    logits = net(ms.Tensor(ref["input"])).asnumpy()
    assert logits.shape == ref[name].shape == (8, 100)
    assert np.abs(logits - ref[name]).max() <= 1e-4 * np.abs(ref[name]).max()
    assert (logits.argmax(1) == ref[name].argmax(1)).all()


def bad_pth(case, path, marker):
    """A copy of the ResNet14 fixture broken in one way; the malicious ones would create ``marker``."""
    if case == "legacy format":
        with open(path, "wb") as f:
            f.write(pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2) + pickle.dumps(1001, protocol=2))
        return path
    # Protocol 2 names a global with GLOBAL, protocol 4 with STACK_GLOBAL: both must be refused.
    evil = {"os.system": (os.system, f"touch {marker}", 2),
            "builtins.eval": (eval, f"open({str(marker)!r}, 'w')", 4)}
    edits = {
        "wrong shape": ("/data.pkl", rename_keys({"fc.weight": "fc.bias", "fc.bias": "fc.weight"})),
        # The real fc.bias follows and replaces this one: only fc.weight is missing.
        "missing key": ("/data.pkl", rename_keys({"fc.weight": "fc.bias"})),
        "extra key": ("/data.pkl", rename_keys({"bn1.num_batches_tracked": "bn1.extra_stat"})),
        "truncated storage": ("/data/0", lambda data: data[:4]),
    }
    if case in evil:
        func, arg, protocol = evil[case]
        edits[case] = ("/data.pkl", lambda _: pickle.dumps(Calls(func, arg), protocol=protocol))
    return rewrite_member(RESNET14, path, *edits[case])


@pytest.mark.parametrize("case, expected", [
    ("wrong shape", "wrong shape (file vs network): fc.weight (100,) vs (100, 64), fc.bias (100, 64)"),
    ("missing key", "missing: fc.weight (check"),
    ("extra key", "unexpected: bn1.extra_stat (check"),
    ("os.system", f"refusing to load it: its pickle calls {os.system.__module__}.system"),
    ("builtins.eval", "refusing to load it: its pickle calls builtins.eval"),
    ("truncated storage", "not a readable PyTorch state dict (storage data/0 holds 4 bytes"),
    ("legacy format", "legacy (pre-1.6) format, which is not supported"),
])
def test_bad_pth_is_refused_with_one_line(case, expected, tmp_path):
    from src.nets.models import build_network
    from src.nets.torch_checkpoint import load_torch_state
    marker = tmp_path / "executed"
    bad = bad_pth(case, str(tmp_path / "bad.pth"), marker)
    with pytest.raises(UserError) as err:
        load_torch_state(build_network("ResNet", 14, 100), bad, "ResNet14 with 100 classes")
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"--pth {bad}")
    assert expected in message
    assert not marker.exists()


def test_existing_checkpoint_is_not_replaced_without_overwrite(tmp_path):
    import convert_torch
    out = tmp_path / "cifar100-ResNet14.ckpt"
    out.write_bytes(b"a user's file")
    with pytest.raises(UserError, match="already exists: pass --overwrite True"):
        convert_torch.main(["--net", "ResNet", "--n_layer", "14", "--pth", RESNET14,
                            "--ckpt_dir", str(tmp_path)])
    assert out.read_bytes() == b"a user's file"


def test_overwrite_keeps_the_replaced_checkpoint(tmp_path, capsys):
    import convert_torch
    out = tmp_path / "cifar100-ResNet14.ckpt"
    out.write_bytes(b"a user's file")
    convert_torch.main(["--net", "ResNet", "--n_layer", "14", "--pth", RESNET14, "--ckpt_dir", str(tmp_path),
                        "--overwrite", "True"])
    (kept,) = os.listdir(tmp_path / "replaced")
    assert kept.startswith("cifar100-ResNet14-")
    assert (tmp_path / "replaced" / kept / out.name).read_bytes() == b"a user's file"
    assert capsys.readouterr().out.splitlines() == [
        f"kept the earlier {out.name} in {tmp_path / 'replaced' / kept}", f"wrote {out}"]
    assert out.read_bytes() != b"a user's file"


def test_entry_point_writes_the_default_teacher_name_and_refuses_bad_input(tmp_path):
    done = run_entry("convert_torch.py", "--net", "WRN", "--n_layer", 16, "--width", 2,
                     "--pth", os.path.join(FIXTURES, "WRN16-2.pth"), cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    out = tmp_path / "ckpts" / "cifar100-WRN16-2.ckpt"
    assert done.stdout.strip() == f"wrote {os.path.join('.', 'ckpts', 'cifar100-WRN16-2.ckpt')}"
    assert out.stat().st_size > 4 * 690_000   # WRN16-2 with 100 classes: about 0.7 M float32s

    before = out.read_bytes()
    bad = bad_pth("missing key", str(tmp_path / "bad.pth"), None)
    failed = run_entry("convert_torch.py", "--net", "WRN", "--n_layer", 16, "--width", 2, "--pth", bad,
                       "--overwrite", "True", cwd=str(tmp_path))
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert_torch.py: error: --pth")
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path / "ckpts")) == ["cifar100-WRN16-2.ckpt"]
