"""Stitch the styled frames into an mp4 at the input's frame rate, with the input's audio."""

import argparse
import json
import subprocess
from pathlib import Path

import imageio_ffmpeg

parser = argparse.ArgumentParser()
parser.add_argument("--frames", required=True)
parser.add_argument("--audio", required=True)
parser.add_argument("--video", required=True)
args = parser.parse_args()

meta = json.loads((Path(args.audio) / "video.json").read_text())
subprocess.run(
    [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-framerate",
        str(meta["fps"]),
        "-i",
        str(Path(args.frames) / "frame-%05d.png"),
        "-i",
        str(Path(args.audio) / "audio.m4a"),
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "copy",
        str(Path(args.video) / "styled.mp4"),
    ],
    check=True,
)
