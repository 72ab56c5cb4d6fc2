"""Split a video into PNG frames and its audio track (AML's style-transfer notebook did this with ffmpeg)."""

import argparse
import json
import subprocess
from pathlib import Path

import imageio_ffmpeg

parser = argparse.ArgumentParser()
parser.add_argument("--video", required=True)
parser.add_argument("--frames", required=True)
parser.add_argument("--audio", required=True)
args = parser.parse_args()

ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
video = Path(args.video) / "input.mp4"
quiet = ["-hide_banner", "-loglevel", "error"]
subprocess.run([ffmpeg, *quiet, "-i", str(video), str(Path(args.frames) / "frame-%05d.png")], check=True)
audio = Path(args.audio) / "audio.m4a"
subprocess.run([ffmpeg, *quiet, "-i", str(video), "-vn", "-c:a", "copy", str(audio)], check=True)
frames, seconds = imageio_ffmpeg.count_frames_and_secs(str(video))
reader = imageio_ffmpeg.read_frames(str(video))
fps = next(reader)["fps"]
reader.close()
(Path(args.audio) / "video.json").write_text(json.dumps({"fps": fps, "frames": frames, "seconds": seconds}))
