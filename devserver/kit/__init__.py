"""Small tools that know nothing of the server: fast records, memo tables, terminal-safe text, sleeping timers."""
