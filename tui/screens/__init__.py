"""The app's modes: Edit, Unroll, Step, Train."""
