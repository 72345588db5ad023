"""Welcome, Review, Update and Done."""
