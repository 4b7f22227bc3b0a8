"""Example configuration (not installed): settings examples and the beat schedule example."""
