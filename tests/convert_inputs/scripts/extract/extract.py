import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--input_data")
parser.add_argument("--output_extract")
args = parser.parse_known_args()[0]
print("extract.py ran", args)
