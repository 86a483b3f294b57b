# host/: add one line per file (+=).
