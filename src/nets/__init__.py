"""The networks: VGG (students), ResNet and WRN (teachers) with the authors' layouts and
initialisation, the registry mapping flags to a network (``models.py``), BatchNorm folding for frozen
teachers (``fold_bn.py``) and the authors' PyTorch weights mapped onto them (``torch_checkpoint.py``)."""
