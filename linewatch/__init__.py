"""linewatch: measured line quality for Vietnam's commune offices."""
__version__ = "0.1.0"
