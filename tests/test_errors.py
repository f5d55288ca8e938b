"""One-line error messages."""
from flm_core.errors import one_line


def test_one_line_folds_every_line_of_the_message():
    assert one_line(ValueError("bad file\n  expected:\tJSON\n")) == "bad file expected: JSON"


def test_an_empty_message_names_the_exception():
    assert one_line(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert one_line(" \n") == "unknown error"
