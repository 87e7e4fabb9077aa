"""The package's CPU kernels: oneDNN convolution, BatchNorm (+ ReLU, + a residual block's sum) and
2x2 max-pooling, as MindSpore custom operators (``--conv_engine``).

``engine.py`` chooses what runs the layers and builds them; ``layers.py`` holds the layers the kernels
run; ``build.py`` compiles the C++ sources beside it on first use and caches the library, with the
compiler ``compiler.py`` chooses;
``check.py`` compares the kernels with MindSpore's layers before a built library is used;
``loader.py`` is how MindSpore calls them (``ops.Custom`` on Linux, its op plugin on Windows).
"""
