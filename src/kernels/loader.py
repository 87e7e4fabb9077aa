"""How MindSpore calls the package's kernels: as ``ops.Custom`` AOT operators on Linux, through its
op-plugin loader on Windows, where MindSpore 2.10 runs no AOT operator (its ``Custom`` refuses
Windows, and so does the C++ kernel behind it).

The op plugin is one library, named by ``MS_OP_PLUGIN_PATH``, which MindSpore reads when it creates
the first CPU kernel of a process; it then runs a primitive it has no kernel for by calling the
library's function of the primitive's name (entry.h). So ``attach`` must come before the first
operator of the process (setup_device does it), and each kernel is a primitive named after its entry
point, inside a Cell whose ``bprop`` gives the gradient (primitives of Python's making have no other).

Linux keeps ``ops.Custom``: it is MindSpore's documented interface, it needs no process-wide
setting made before the first operator (so ``MS_OP_PLUGIN_PATH`` stays the user's), and the plugin
ran the benchmarks no faster there (docs/windows.md). Should a later MindSpore drop the plugin, the
self-check in build.py fails and ``auto`` falls back with one line.
"""
import functools
import inspect
import os
import sys

PLUGIN_ENV = "MS_OP_PLUGIN_PATH"


def uses_plugin():
    return sys.platform == "win32"


def same_build(a, b):
    """Whether two library paths are one build: the same file, or the same cache entry's file in
    another cache (a parent process with another ``ATS_CACHE_DIR`` attached it)."""
    a, b = os.path.normcase(os.path.abspath(a)), os.path.normcase(os.path.abspath(b))
    return a == b or (os.path.basename(a) == os.path.basename(b)
                      and os.path.basename(os.path.dirname(a)) == os.path.basename(os.path.dirname(b)))


def attach(library):
    """Let MindSpore call ``library``'s kernels in this process (to be done before its first
    operator). Returns the library MindSpore will call (the same build), or None if the user's
    ``MS_OP_PLUGIN_PATH`` names another library: MindSpore loads only one."""
    if not uses_plugin():
        return library
    current = os.environ.get(PLUGIN_ENV)
    if not current:
        # Windows' loader needs a path of its own form: absolute, backslashes only (ATS_CACHE_DIR
        # may be written with forward slashes).
        os.environ[PLUGIN_ENV] = os.path.abspath(library)
        return library
    return current if same_build(current, library) else None


def attached(library):
    """Whether this process can run ``library``'s kernels (on Windows: if it was attached)."""
    return not uses_plugin() or same_build(os.environ.get(PLUGIN_ENV, ""), library)


def environment(library):
    """What a fresh process needs in its environment to run ``library``'s kernels."""
    return {PLUGIN_ENV: library} if uses_plugin() else {}


def operator(library, name, out_shape, out_dtype, bprop=None):
    """The kernel ``name`` of ``library`` as a MindSpore operator: ``out_shape`` and ``out_dtype``
    map the inputs' shapes and types to the outputs' (a tuple for several outputs); ``bprop(*inputs,
    out, dout)`` gives the inputs' gradients."""
    if not uses_plugin():
        from mindspore import ops
        return ops.Custom(f"{library}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot",
                          bprop=bprop)
    primitive = _primitive(name, out_shape, out_dtype)
    return primitive if bprop is None else _with_bprop(primitive, bprop)


def _primitive(name, out_shape, out_dtype):
    from mindspore.ops import PrimitiveWithInfer

    def tensor_type(t):   # out_dtype may name a plain type (ms.uint8), as ops.Custom accepts
        from mindspore import dtype
        return t if isinstance(t, dtype.TensorType) else dtype.TensorType(t)

    def tensor_types(types):
        return tuple(map(tensor_type, types)) if isinstance(types, tuple) else tensor_type(types)

    # The class name is the primitive's name, which the plugin loader looks up in the library.
    return type(name, (PrimitiveWithInfer,), {
        "__init__": lambda self: PrimitiveWithInfer.__init__(self, name),
        "infer_shape": lambda self, *shapes: out_shape(*shapes),
        "infer_dtype": lambda self, *types: tensor_types(out_dtype(*types)),
    })()


def _with_bprop(primitive, gradient):
    inputs = len(inspect.signature(gradient).parameters) - 2   # the inputs, then out and dout
    return _kernel_cells()[inputs](primitive, gradient)


@functools.lru_cache(maxsize=None)
def _kernel_cells():
    """Cells that run a primitive and take their gradient from a function, one class per number of
    inputs: MindSpore reads a Cell's ``bprop`` from its source and counts its parameters (neither
    ``*args`` nor a function put in its place will do)."""
    from mindspore import nn

    class Kernel(nn.Cell):
        def __init__(self, primitive, gradient):
            super().__init__()
            self.primitive, self.gradient = primitive, gradient

        def construct(self, *inputs):
            return self.primitive(*inputs)

    class Inputs1(Kernel):
        def bprop(self, a, out, dout):
            return self.gradient(a, out, dout)

    class Inputs3(Kernel):
        def bprop(self, a, b, c, out, dout):
            return self.gradient(a, b, c, out, dout)

    class Inputs4(Kernel):
        def bprop(self, a, b, c, d, out, dout):
            return self.gradient(a, b, c, d, out, dout)

    class Inputs5(Kernel):
        def bprop(self, a, b, c, d, e, out, dout):
            return self.gradient(a, b, c, d, e, out, dout)

    class Inputs6(Kernel):
        def bprop(self, a, b, c, d, e, f, out, dout):
            return self.gradient(a, b, c, d, e, f, out, dout)

    class Inputs7(Kernel):
        def bprop(self, a, b, c, d, e, f, g, out, dout):
            return self.gradient(a, b, c, d, e, f, g, out, dout)

    return {1: Inputs1, 3: Inputs3, 4: Inputs4, 5: Inputs5, 6: Inputs6, 7: Inputs7}
