"""The plain and JSON console log, written from a thread of its own."""
