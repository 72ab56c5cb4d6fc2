import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--input_data")
parser.add_argument("--output_train")
args = parser.parse_known_args()[0]
print("train.py ran", args)
