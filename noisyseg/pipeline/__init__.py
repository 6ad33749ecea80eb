"""Runners: dataset-level functions, one module per command. They read the data contract, batch,
call a strategy, write outputs atomically and return a report dict (also written as report.json)."""
