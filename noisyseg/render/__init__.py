"""Pictures of labels and reports: colour labels and overlays (numpy/PIL), plots (matplotlib), HTML."""
