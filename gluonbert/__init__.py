"""gluonbert."""
