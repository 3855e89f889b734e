"""Where the server listens unless told otherwise: imports nothing, so the command can bind before anything slow."""

DEFAULT_HOST = "127.0.0.1"  # loopback: a development server shows tracebacks and source
DEFAULT_PORT = 8899
DEFAULT_BACKLOG = 1024
