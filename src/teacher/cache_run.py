"""``--teacher_cache auto|off|FOLDER``: which cache file a run uses, its key, and the log's lines.

The file is named after the teacher checkpoint and what else may legitimately differ for one
checkpoint (dataset, engine, input normalisation), e.g. ``cifar100-ResNet110.cifar100-onnxruntime-
dataset.logits``; ``auto`` puts it beside the teacher checkpoint, a FOLDER holds it there instead.
Everything that decides the logits is in the key (cache.py refuses a file of another key and
replaces it): the checkpoint's content, the network flags, the input normalisation, the dataset's
images and normalisation, the augmentation's padding, the class count and the engine with its version.
"""
import os
from typing import NamedTuple

from ..data import CROP_PAD, dataset_info, file_digest
from ..errors import UserError
from ..storage.run_files import ckpt_stem
from ..storage.user_paths import join
from .cache import FORMAT_VERSION, CachedTeacher, CacheUnusable, Layout, array_digest, open_store

CACHE_SUFFIX = ".logits"
# Engines whose logits of an image do not depend on the other images of its batch or on the batch's
# size (checked bit for bit on ResNet20, WRN16-2 and VGG8): a stored value is then what a live run
# computes. MindSpore's differ in the last bits between batch sizes.
BATCH_INVARIANT_ENGINES = ("onnxruntime",)


class TeacherCaches(NamedTuple):
    """The cached teacher of the training images (with views) and of the test images."""
    train: CachedTeacher
    test: CachedTeacher


def cache_file(folder, t_ckpt, dataset, engine, t_input_norm):
    stem = ckpt_stem(os.path.basename(t_ckpt))
    return join(folder, f"{stem}.{dataset}-{engine}-{t_input_norm}{CACHE_SUFFIX}")


def engine_id(engine, conv_engine):
    """The teacher engine and what changes its numbers: the library's version and, for MindSpore,
    which convolution kernels run the (BatchNorm-folded) network."""
    if engine == "onnxruntime":
        import onnxruntime
        return f"onnxruntime {onnxruntime.__version__}"
    import mindspore
    return f"mindspore {mindspore.__version__}, {conv_engine} layers, BatchNorm folded"


def cache_key(args, engine, train_images, test_images):
    info = dataset_info(args.dataset)
    return {"format": FORMAT_VERSION, "teacher_sha256": file_digest(args.t_ckpt, "sha256"),
            "t_net": args.t_net, "t_n_layer": args.t_n_layer, "t_width": args.t_width,
            "t_input_norm": args.t_input_norm, "n_classes": args.n_classes, "dataset": args.dataset,
            "train_images_sha256": array_digest(train_images),
            "test_images_sha256": array_digest(test_images),
            "input_mean": list(info.mean), "input_std": list(info.std), "crop_pad": CROP_PAD,
            "engine": engine}


def open_teacher_caches(args, teacher, conv_engine, train_images, test_images, note):
    """The run's ``TeacherCaches`` over ``teacher``, or None (``off``, or ``auto``
    when the cache cannot be used: ``note`` gets one line why, and the teacher runs live). A FOLDER
    that cannot hold the cache is a UserError. ``note`` also gets where the cache is, its size and
    how full it is."""
    setting, engine = args.teacher_cache, teacher.engine
    if setting == "off":
        return None
    explicit = setting != "auto"
    if not explicit and engine not in BATCH_INVARIANT_ENGINES:
        note(f"teacher cache not used: the {engine} teacher's logits change in their last bits with "
             f"the batch they are computed in, so reading them could change this run's numbers; "
             f"--teacher_cache FOLDER uses one anyway")
        return None
    folder = setting if explicit else (os.path.dirname(args.t_ckpt) or os.curdir)
    path = cache_file(folder, args.t_ckpt, args.dataset, engine, args.t_input_norm)
    if explicit:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise UserError(f"--teacher_cache {setting}: cannot create the folder "
                            f"({err.strerror or err})") from None
    layout = Layout(len(train_images), len(test_images), args.n_classes)
    key = cache_key(args, engine_id(engine, conv_engine), train_images, test_images)
    try:
        store = open_store(path, layout, key, note)
    except CacheUnusable as err:
        if explicit:
            raise UserError(f"--teacher_cache {setting}: {err}") from None
        note(f"teacher cache not used: {err}; the teacher runs live")
        return None
    stored = store.stored()
    note(f"teacher cache {path}: {store.size_on_disk() / 1e9:.2f} GB on disk, {stored:,} of "
         f"{layout.n_entries:,} teacher outputs stored ({100 * stored / layout.n_entries:.1f}%)")
    return TeacherCaches(CachedTeacher(teacher, store, "train", note),
                         CachedTeacher(teacher, store, "test", note))
