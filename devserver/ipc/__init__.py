"""What the supervisor and its workers agree on: the settings, control messages down, events up."""
