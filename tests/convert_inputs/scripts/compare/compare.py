import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--input_data")
parser.add_argument("--output_compare")
args = parser.parse_known_args()[0]
print("compare.py ran", args)
