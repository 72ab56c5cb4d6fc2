import argparse
import os

parser = argparse.ArgumentParser()
for flag in ("--input_data", "--output_train", "--input_extract", "--output_extract", "--compare_data1", "--compare_data2", "--output_compare", "--pipeline_param"):
    parser.add_argument(flag)
args = parser.parse_args()
for out in (args.output_train, args.output_extract, args.output_compare):
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "done.txt"), "w") as f:
            f.write("extract ran\n")
print("extract.py", vars(args))
