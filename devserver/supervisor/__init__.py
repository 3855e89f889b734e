"""The supervisor process: sockets, workers started and replaced, warm restarts, what it watches."""
