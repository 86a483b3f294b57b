# Benchmarks: built by 'make bench'-style targets; add one block per benchmark.
