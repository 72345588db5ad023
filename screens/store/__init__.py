"""The Docker and Image steps."""
