#!/bin/sh
# The portable twin of the AML notebook's azurebatch.cmd: copy the input file into the output folder.
# Usage: copy.sh <input file> <output folder>
set -eu
echo "copying $1 to $2"
cp "$1" "$2/"
echo "done: $(wc -l < "$1") lines"
