"""Training loops built from strategies and ops."""
