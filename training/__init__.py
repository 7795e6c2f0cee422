"""Data, features, training and evaluation. Never imports Flask."""
