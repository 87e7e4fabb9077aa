"""After training, for inference: export to MindIR or ONNX (``export.py``) and inference with an
exported MindIR (``inference.py``)."""
