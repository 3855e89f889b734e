"""What a developer sees of a failure: error reports, the kept failing frames and their console, captured bodies, per-request logs."""
