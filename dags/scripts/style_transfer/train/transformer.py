"""A small feed-forward style transfer network (Johnson et al. 2016, scaled down), and the fixed random
convolutional network whose features define the perceptual losses.

The loss network is not VGG: it has random weights drawn from a fixed seed (random deep features carry
texture statistics well enough to train a style; Ustyuzhaninov et al. 2016), so nothing is downloaded.
"""

import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(channels, affine=True),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(channels, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class TransformerNet(nn.Module):
    """Image (N, 3, H, W) in [0, 1] -> stylised image of the same size, H and W multiples of 4."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 9, padding=4, padding_mode="reflect"),
            nn.InstanceNorm2d(width, affine=True),
            nn.ReLU(),
            nn.Conv2d(width, width * 2, 3, stride=2, padding=1),
            nn.InstanceNorm2d(width * 2, affine=True),
            nn.ReLU(),
            Residual(width * 2),
            Residual(width * 2),
            Residual(width * 2),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width * 2, width, 3, padding=1, padding_mode="reflect"),
            nn.InstanceNorm2d(width, affine=True),
            nn.ReLU(),
            nn.Conv2d(width, 3, 9, padding=4, padding_mode="reflect"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


class RandomFeatures(nn.Module):
    """Three convolutional stages with fixed random weights; returns each stage's activations."""

    def __init__(self, seed: int = 1234) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.stages = nn.ModuleList()
        channels = 3
        for out in (32, 64, 128):
            conv = nn.Conv2d(channels, out, 3, padding=1)
            with torch.no_grad():
                conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * (2.0 / (9 * channels)) ** 0.5)
                conv.bias.zero_()
            self.stages.append(nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2)))
            channels = out
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def gram(features: torch.Tensor) -> torch.Tensor:
    n, c, h, w = features.shape
    flat = features.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)
