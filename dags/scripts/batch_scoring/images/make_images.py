"""Write the second half of the digits data set as 8x8 grayscale PNG files, and their labels."""

import argparse
import csv
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--images", required=True)
parser.add_argument("--labels", required=True)
args = parser.parse_args()

digits = load_digits()
half = len(digits.images) // 2
count = min(int(runtime.param("count", 300)), len(digits.images) - half)
with open(Path(args.labels) / "labels.csv", "w", newline="") as handle:
    writer = csv.writer(handle)
    writer.writerow(["file", "label"])
    for number in range(count):
        index = half + number
        name = f"digit-{number:04d}.png"
        pixels = (digits.images[index] * (255.0 / 16.0)).round().astype(np.uint8)
        Image.fromarray(pixels).save(Path(args.images) / name)
        writer.writerow([name, int(digits.target[index])])
