"""The Top layer step: its screen, the file tree, the editor, the machine form."""
