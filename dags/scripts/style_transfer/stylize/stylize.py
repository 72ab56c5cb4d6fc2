"""The ParallelRunStep entry script: style each frame with the trained network (AML's style-transfer
notebook ran one frame per mini-batch and wrote the styled frames itself: output_action summary_only)."""

import argparse
import json
import os
import sys

import numpy as np
import torch
from PIL import Image


def init():
    global net, output_dir
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--output_dir", required=True)
    args, _ = parser.parse_known_args()
    output_dir = args.output_dir
    torch.set_num_threads(1)  # one thread per worker process: the pool is the parallelism
    sys.path.insert(0, args.model)
    from transformer import TransformerNet

    with open(os.path.join(args.model, "shape.json")) as handle:
        net = TransformerNet(**json.load(handle))
    net.load_state_dict(torch.load(os.path.join(args.model, "transformer.pt"), weights_only=True))
    net.eval()


def run(mini_batch):
    done = []
    for path in mini_batch:
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
        with torch.no_grad():
            styled = net(torch.from_numpy(pixels).permute(2, 0, 1)[None])[0]
        image = (styled.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(image).save(os.path.join(output_dir, os.path.basename(path)))
        done.append(os.path.basename(path))
    return done
