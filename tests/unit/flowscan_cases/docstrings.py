"""Parameter descriptions come from the flow's Google-style docstring (Prefect parses it with griffe)."""
from prefect import flow


@flow
def documented(source: str, limit: int = 10, verbose: bool = False, name: str = "n", *args, **kwargs):
    """Copy rows from a source.

    Longer text that mentions Args: but is not a section.

    Args:
        source: Where to read from.
            Continues on a second line.
        limit (int, optional): At most this many rows.
        verbose:
        not_a_parameter: Ignored by Prefect.
        *args: Starred names do not match.

    Returns:
        Nothing at all.
    """


@flow
def parameters_heading(a: int, b: int = 2):
    """Summary.

    Parameters:
        a: First.

        b: Second, after a blank line.
    """


@flow
def no_blank_line_above(a: int):
    """Summary.
    Args:
        a: Not a section: griffe wants a blank line above the heading.
    """


@flow
def not_indented(a: int):
    """Summary.

    Args:
    a: Not indented, so not a section.
    """


@flow
def last_section_wins(a: int, b: int):
    """Summary.

    Args:
        a: From the first section.

    Arguments:
        b: From the second section.

    ```
    Args:
        a: Inside a code fence.
    ```
    """


@flow
def undocumented(name: str = "x", version: str = "v", description: str = "d"):
    pass
