"""Speed benchmarks (not part of the test suite): python -m benchmarks.train_speed --help."""
