# Programs: add one block per program.
