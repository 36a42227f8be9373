"""fwwatch on one machine: SQLite state, the run cycle, and the watch loop."""
