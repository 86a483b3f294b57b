# Benchmarks: built by 'make bench'-style targets; add one block per benchmark.

# Pipe throughput of the file, command and coroutine paths: ./tests/bench/bench-pipe [MiB]
noinst_PROGRAMS += tests/bench/bench-pipe
tests_bench_bench_pipe_SOURCES = tests/bench/bench-pipe.cc
tests_bench_bench_pipe_CPPFLAGS = $(AM_CPPFLAGS) $(GLIB_CFLAGS)
tests_bench_bench_pipe_LDADD = qio/libqio.la $(GLIB_LIBS)
