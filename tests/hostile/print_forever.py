# Prints forever. The output limit (-o max_output) stops the run.
import sys

line = "y" * 1023 + "\n"
while True:
    sys.stdout.write(line)
