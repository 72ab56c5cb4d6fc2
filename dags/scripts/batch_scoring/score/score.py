"""The ParallelRunStep entry script, as AML's batch-scoring notebook wrote it: init() loads the model
once per worker process, run(mini_batch) gets a list of image paths and returns one row per image."""

import argparse
import os
import pickle

import numpy as np
from PIL import Image


def init():
    global model
    parser = argparse.ArgumentParser(description="Digit classification")
    parser.add_argument("--model", dest="model", required=True)
    args, _ = parser.parse_known_args()
    with open(os.path.join(args.model, "model.pkl"), "rb") as handle:
        model = pickle.load(handle)


def run(mini_batch):
    result_list = []
    for image_path in mini_batch:
        pixels = np.asarray(Image.open(image_path).convert("L"), dtype=np.float64) * (16.0 / 255.0)
        label = int(model.predict(pixels.reshape(1, -1))[0])
        result_list.append(f"{os.path.basename(image_path)}: {label}")
    return result_list
