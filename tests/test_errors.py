"""The one-line error helpers."""

from vrl3.errors import first_line


def test_first_line_is_the_first_line_without_terminal_styles():
    assert first_line(RuntimeError("\x1b[1mWeights only load failed\x1b[0m.\nIn PyTorch 2.6 ...")) == \
        "Weights only load failed."
    assert first_line(ValueError("  ")) == "ValueError"
