"""The panels the screens are built of: header, footer, request log, server log, stats, workers, reloads, filter bar, bodies."""
