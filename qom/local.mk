# qom/: add one line per file (+=).
