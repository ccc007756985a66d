"""Widgets of the rnngraph TUI."""
