# monitor/: add one line per file (+=).
