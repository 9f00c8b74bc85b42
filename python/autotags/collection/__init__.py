"""The collection: finding photos below folders, deciding which need tagging, and the
SQLite tag store that keeps what every model and person said about each image."""
