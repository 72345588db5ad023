"""The flows: plan and apply, update and rollback, review, the steps, the TUI's services."""
