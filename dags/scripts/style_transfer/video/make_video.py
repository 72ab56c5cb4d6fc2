"""Generate a short test video with sound (ffmpeg's test patterns; ffmpeg from the imageio-ffmpeg wheel)."""

import argparse
import subprocess
from pathlib import Path

import imageio_ffmpeg

from airflow_provider_amlpipe import runtime

parser = argparse.ArgumentParser()
parser.add_argument("--video", required=True)
args = parser.parse_args()

seconds = float(runtime.param("seconds", 2))
fps = int(runtime.param("fps", 10))
subprocess.run(
    [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size=128x96:rate={fps}:duration={seconds}",
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        str(Path(args.video) / "input.mp4"),
    ],
    check=True,
)
