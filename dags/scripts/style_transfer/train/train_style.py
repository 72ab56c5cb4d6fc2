"""Train the style network briefly on the video's own frames, towards a style image generated here.

The style image is procedural (coloured waves and discs, seeded), the perceptual losses come from a
fixed random convolutional network (see transformer.py): no weights or images are downloaded. The
model output holds the weights and transformer.py, so the stylising step needs nothing else.
"""

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformer import RandomFeatures, TransformerNet, gram

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--frames", required=True)
parser.add_argument("--model", required=True)
args = parser.parse_args()

torch.manual_seed(0)
torch.set_num_threads(2)
steps = int(runtime.param("steps", 40))
size = 48


def style_image(height: int, width: int) -> np.ndarray:
    """Warm diagonal waves with dark discs: a strong, regular texture that is easy to see in the output."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:height, 0:width] / 8.0
    waves = np.sin(x + y) * 0.5 + 0.5
    image = np.stack([0.9 * waves + 0.1, 0.35 + 0.4 * np.sin(2 * x) ** 2, 0.6 * (1 - waves)], axis=-1)
    for _ in range(12):
        cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(3, 9)
        disc = (np.mgrid[0:height, 0:width][0] - cy) ** 2 + (np.mgrid[0:height, 0:width][1] - cx) ** 2 < r * r
        image[disc] = image[disc] * 0.2
    return np.clip(image, 0, 1)


def load(path: Path) -> torch.Tensor:
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(pixels).permute(2, 0, 1)


style = torch.from_numpy(style_image(size, size).astype(np.float32)).permute(2, 0, 1)[None]
Image.fromarray((style[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(Path(args.model) / "style.png")
frames = torch.stack([load(p) for p in sorted(Path(args.frames).glob("*.png"))])
features = RandomFeatures()
style_grams = [gram(f) for f in features(style)]
shape = {"width": 8}
net = TransformerNet(**shape)
optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
losses = []
for step in range(steps):
    index = torch.randint(0, len(frames), (2,))
    top = int(torch.randint(0, frames.shape[2] - size + 1, (1,)))
    left = int(torch.randint(0, frames.shape[3] - size + 1, (1,)))
    content = frames[index, :, top : top + size, left : left + size]
    out = net(content)
    out_features, content_features = features(out), features(content)
    style_loss = sum(torch.mean((gram(o) - g) ** 2) for o, g in zip(out_features, style_grams, strict=True))
    content_loss = torch.mean((out_features[1] - content_features[1]) ** 2)
    loss = 1e4 * style_loss + content_loss
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(float(style_loss.detach()))
    if step % 10 == 0:
        print(f"step {step}: style loss {losses[-1]:.3g}, content loss {float(content_loss.detach()):.3g}", flush=True)
runtime.log_metric("style_loss_first", losses[0])
runtime.log_metric("style_loss_last", float(np.mean(losses[-5:])))
torch.save(net.state_dict(), Path(args.model) / "transformer.pt")
(Path(args.model) / "shape.json").write_text(json.dumps(shape))
shutil.copy(Path(__file__).with_name("transformer.py"), Path(args.model) / "transformer.py")
curve = losses[:: max(1, steps // 10)]
(Path(args.model) / "training.json").write_text(json.dumps({"steps": steps, "style_loss": curve}))
