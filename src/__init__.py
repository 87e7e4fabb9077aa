"""MindSpore reproduction of "Asymmetric Temperature Scaling Makes Larger Networks Teach Well Again"."""
import os

__version__ = "1.0.0"

# MindSpore logs every deprecation and kernel-selection notice at WARNING level to stderr, which
# buries the package's own output; keep errors only unless the user asks for more.
os.environ.setdefault("GLOG_v", "3")
