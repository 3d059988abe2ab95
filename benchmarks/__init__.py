"""Speed benchmarks (not part of the test suite): python benchmarks/train_speed.py --help."""
