"""``predict --init-from PATH [spec flags] --images X.npy --json OUT``: the logits of a loaded
net, so a user can check it against the code that trained it.

X.npy holds N×C×H×W float32 images, already normalised as the net expects. The file is
read with ``allow_pickle=False`` and the checkpoint with ``weights_only=True``. The net runs
in eval mode on the checkpoint's own BN statistics (what the net computes at test time).
"""
from __future__ import annotations

import argparse

import numpy as np

from resnet_viz.cli.options import CLIError, add_spec_flags, check_writable, spec_from_args, write_json

MAX_IMAGES_BYTES = 256 * 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_spec_flags(parser)
    group = parser.add_argument_group("prediction")
    group.add_argument("--init-from", "--init_from", dest="init_from", required=True, metavar="PATH",
                       help="checkpoint: ours, or the CIFAR-ResNet layout (docs/cli.md)")
    group.add_argument("--images", required=True, metavar="X.npy", help="N×C×H×W float32, normalised")
    group.add_argument("--json", metavar="PATH", required=True, help='write {"logits": [[...], ...]} here')


def read_images(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """The images of ``path`` if they are float32 N×``shape``; a ``CLIError`` says what is not."""
    try:
        with open(path, "rb") as f:
            if len(f.read(MAX_IMAGES_BYTES + 1)) > MAX_IMAGES_BYTES:
                raise CLIError(f"{path} is larger than {MAX_IMAGES_BYTES // 2**20} MB")
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise CLIError(f"cannot read {path} as a .npy array ({err})") from None
    if x.dtype != np.float32 or x.ndim != 1 + len(shape) or tuple(x.shape[1:]) != tuple(shape):
        raise CLIError(f"{path} holds {x.dtype} {tuple(x.shape)}; this net takes float32 N×"
                       f"{'×'.join(map(str, shape))}")
    if not np.isfinite(x).all():
        raise CLIError(f"{path} has NaN or infinite values")
    return x


def run(args: argparse.Namespace) -> int:
    import torch

    from resnet_viz.nets.checkpoints import load_weights
    from resnet_viz.nets.models import build_model

    spec = spec_from_args(args)
    check_writable(args.json)
    x = read_images(args.images, spec.data_shape()[0])
    model = build_model(spec)
    layout = load_weights(model, args.init_from)
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(x))
    write_json(args.json, {"logits": logits.tolist(), "layout": layout, "spec": spec.to_dict()})
    print(f"predict: {len(x)} image(s), {logits.shape[1]} logits each ({layout} checkpoint)")
    return 0
