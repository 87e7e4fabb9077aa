"""A teacher trained on ImageNet-normalised inputs (the authors') sees exactly those inputs."""
import numpy as np

from src.data import DATASETS, IMAGENET_MEAN_STD, Normalizer, normalization_stats, random_crop_flip
from src.teacher.frozen import Renormalized


def test_renormalized_teacher_input_equals_normalising_raw_pixels_its_way():
    raw = np.random.default_rng(0).integers(0, 256, size=(16, 3, 32, 32)).astype(np.uint8)
    crops = random_crop_flip(raw, np.random.default_rng(1))          # includes zero padding
    info = DATASETS["cifar100"]
    ours = Normalizer(*normalization_stats(info, "dataset"))(crops)
    seen = Renormalized(lambda x: x, normalization_stats(info, "dataset"),
                        normalization_stats(info, "imagenet"))(ours)
    np.testing.assert_allclose(seen, Normalizer(*IMAGENET_MEAN_STD)(crops), atol=2e-6)
    assert not np.allclose(seen, ours, atol=1e-2)


def test_renormalized_keeps_the_teacher_contract():
    """NumPy batch in, the wrapped teacher's NumPy logits out, and its engine named."""
    x = np.random.default_rng(2).standard_normal((4, 3, 32, 32)).astype(np.float32)
    info = DATASETS["cifar100"]

    def inner(batch):
        return batch.reshape(len(batch), -1)[:, :10].copy()
    inner.engine = "onnxruntime"
    teacher = Renormalized(inner, normalization_stats(info, "dataset"), IMAGENET_MEAN_STD)
    out = teacher(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (4, 10)
    np.testing.assert_array_equal(out, inner(x * teacher.scale + teacher.shift))
    assert teacher.engine == "onnxruntime"
