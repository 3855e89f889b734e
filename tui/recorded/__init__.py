"""What the dashboard does with recorded requests: read their bodies, filter, replay, compare, export."""
