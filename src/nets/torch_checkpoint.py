"""PyTorch ``.pth`` state dicts read without PyTorch, and mapped onto our networks' parameters.

``torch.save`` (PyTorch >= 1.6) writes a zip archive: ``<root>/data.pkl`` is a pickle of the state
dict in which every tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
and every storage is a persistent id ``('storage', torch.<Type>Storage, key, location, numel)`` whose
raw bytes are the member ``<root>/data/<key>``. The pickle is read with an unpickler that resolves
only those names (and ``collections.OrderedDict``), so a file cannot make us run anything.
"""
import collections
import pickle
import zipfile

import numpy as np

from ..errors import UserError

# Storage classes -> element type on disk. bfloat16 has no NumPy type: read as its 16 raw bits.
_STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "b1",
}

# Our BatchNorm parameter names -> PyTorch's; every other parameter has the same name in both.
_BN_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}

# The legacy (non-zip, PyTorch < 1.6) format starts with a protocol-2 pickle of this number.
_LEGACY_MAGIC = pickle.dumps(0x1950a86a20f9469cfc6c, protocol=2)[:12]


class _StorageType:
    """What the pickle's ``torch.<Type>Storage`` resolves to: only its element type is needed."""

    def __init__(self, name):
        self.bfloat16 = name == "BFloat16Storage"
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


def _rebuild_tensor(storage, offset, size, stride, *_):
    """The array ``torch._utils._rebuild_tensor_v2`` would view: ``size``/``stride`` from ``offset``."""
    if not (isinstance(storage, np.ndarray) and isinstance(offset, int) and isinstance(size, tuple)
            and isinstance(stride, tuple) and len(size) == len(stride)
            and all(isinstance(n, int) and n >= 0 for n in size + stride) and offset >= 0):
        raise ValueError("a tensor record is malformed")
    if 0 in size:
        return np.zeros(size, storage.dtype)
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise ValueError(f"a tensor of size {size} reaches past its storage of {storage.size} elements")
    view = np.lib.stride_tricks.as_strided(storage[offset:], size,
                                           tuple(s * storage.itemsize for s in stride))
    return np.array(view)


class _StateDictUnpickler(pickle.Unpickler):
    _GLOBALS = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
                ("collections", "OrderedDict"): collections.OrderedDict}

    def __init__(self, file, archive, root, big_endian, where):
        super().__init__(file)
        self.archive, self.root, self.big_endian, self.where = archive, root, big_endian, where
        self.storages = {}

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in self._GLOBALS:
            return self._GLOBALS[(module, name)]
        raise UserError(f"{self.where}: refusing to load it: its pickle calls {module}.{name}, which "
                        f"a PyTorch state dict never needs (only tensors and storages are allowed)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
            raise ValueError(f"unknown persistent id {str(pid)[:60]}")
        _, kind, key, _location, numel = pid   # the location (cpu, cuda:0) does not matter here
        if key not in self.storages:
            self.storages[key] = self._read_storage(kind, str(key), numel)
        return self.storages[key]

    def _read_storage(self, kind, key, numel):
        raw = self.archive.read(f"{self.root}/data/{key}")
        dtype = kind.dtype.newbyteorder(">" if self.big_endian else "<")
        if len(raw) < numel * dtype.itemsize:
            raise ValueError(f"storage data/{key} holds {len(raw)} bytes, expected "
                             f"{numel * dtype.itemsize}")
        array = np.frombuffer(raw, dtype, count=numel).astype(dtype.newbyteorder("="))
        if kind.bfloat16:
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _pickle_root(archive):
    """The folder of the archive's ``data.pkl`` (torch names it after the saved file)."""
    roots = [n[:-len("/data.pkl")] for n in archive.namelist()
             if n.endswith("/data.pkl") and n.count("/") == 1]
    return roots[0] if len(roots) == 1 else None


def read_state_dict(path, flag="--pth"):
    """``{name: numpy array}`` of a ``torch.save``-d state dict; UserError if it is anything else."""
    where = f"{flag} {path}"
    try:
        with open(path, "rb") as f:
            head = f.read(len(_LEGACY_MAGIC))
    except OSError as err:
        raise UserError(f"{where}: cannot be read ({err.strerror or err})") from None
    if head == _LEGACY_MAGIC:
        raise UserError(f"{where}: saved in PyTorch's legacy (pre-1.6) format, which is not "
                        f"supported; re-save it with PyTorch >= 1.6 (torch.save(torch.load(old), new))")
    if not zipfile.is_zipfile(path):
        raise UserError(f"{where}: not a PyTorch checkpoint (expected the zip archive torch.save writes)")
    try:
        with zipfile.ZipFile(path) as archive:
            root = _pickle_root(archive)
            if root is None:
                raise UserError(f"{where}: not a PyTorch checkpoint (no <name>/data.pkl in the archive)")
            order = f"{root}/byteorder"
            big = order in archive.namelist() and archive.read(order).strip() == b"big"
            with archive.open(f"{root}/data.pkl") as pkl:
                state = _StateDictUnpickler(pkl, archive, root, big, where).load()
    except UserError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, KeyError,
            AttributeError, IndexError, OverflowError, MemoryError, RuntimeError) as err:
        detail = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"{where}: not a readable PyTorch state dict ({detail})") from None
    if not isinstance(state, dict):
        raise UserError(f"{where}: holds a {type(state).__name__}, expected a state dict "
                        f"(parameter name -> tensor) as torch.save(model.state_dict(), f) writes")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise UserError(f"{where}: entry {str(name)[:60]!r} is not a tensor; expected a state "
                            f"dict (parameter name -> tensor) as torch.save(model.state_dict(), f) writes")
    return dict(state)


def torch_name(name):
    """The PyTorch name of one of our parameters (``bn1.gamma`` -> ``bn1.weight``)."""
    prefix, _, leaf = name.rpartition(".")
    return f"{prefix}.{_BN_NAMES[leaf]}" if leaf in _BN_NAMES else name


def _summary(label, names):
    more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
    return f"{label}: {', '.join(names[:3])}{more}"


def match_state_dict(net, state, where, what):
    """``{our name: float32 array}`` for every parameter of ``net`` from a PyTorch state dict.

    Every parameter must be present with its shape and a floating-point type; nothing else may be
    in the file except BatchNorm's ``num_batches_tracked`` counters (MindSpore has none). A misfit
    is a UserError naming the offending PyTorch names.
    """
    ours = {torch_name(p.name): p for p in net.get_parameters()}
    bn_layers = {p.name[:-len(".gamma")] for p in net.get_parameters() if p.name.endswith(".gamma")}
    missing = [n for n in ours if n not in state]
    unexpected = [n for n in state if n not in ours
                  and not (n.endswith(".num_batches_tracked") and n.rpartition(".")[0] in bn_layers)]
    wrong = [f"{n} {state[n].shape} vs {tuple(p.shape)}" for n, p in ours.items()
             if n in state and state[n].shape != tuple(p.shape)]
    not_float = [f"{n} ({state[n].dtype})" for n in ours if n in state and state[n].dtype.kind != "f"]
    problems = [_summary(label, names) for label, names in
                (("missing", missing), ("unexpected", unexpected),
                 ("wrong shape (file vs network)", wrong), ("not floating point", not_float)) if names]
    if problems:
        raise UserError(f"{where} does not fit {what}: {'; '.join(problems)} (check --net, "
                        f"--n_layer, --width and --n_classes)")
    return {p.name: state[n].astype(np.float32) for n, p in ours.items()}


def load_torch_state(net, path, what, flag="--pth"):
    """Set every parameter of ``net`` (a Cell of ours) from the PyTorch state dict at ``path``."""
    import mindspore as ms  # here, so that reading a .pth needs NumPy only

    params = match_state_dict(net, read_state_dict(path, flag), f"{flag} {path}", what)
    for p in net.get_parameters():
        p.set_data(ms.Tensor(params[p.name]))
