"""correction strategies, one per module. ``SPECS`` lists what the built-in plugin registers."""

SPECS: list = []
