"""The frozen teacher: loaded and run for inference by MindSpore or ONNX Runtime (``frozen.py``,
``onnx_runtime.py``), and the exact cache of its logits (``cache.py``; which file a run uses:
``cache_run.py``)."""
