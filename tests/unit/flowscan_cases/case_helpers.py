"""Imported by unresolvable.py: the scanner never reads other files, so it cannot know these."""


class Plain:
    pass
