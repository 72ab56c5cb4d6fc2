import argparse
import os

parser = argparse.ArgumentParser()
for flag in ("--input_data", "--output_train", "--input_extract", "--output_extract", "--pipeline_param", "--web"):
    parser.add_argument(flag)
args = parser.parse_args()
for out in (args.output_train, args.output_extract):
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "done.txt"), "w") as f:
            f.write("ran\n")
