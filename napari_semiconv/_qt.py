"""Small Qt helpers shared by the widgets."""

from __future__ import annotations


def narrow_combo(combo, characters: int = 24) -> None:
    """Keep a magicgui ComboBox of long layer names from widening its dock (and squeezing the
    canvas): it shows about `characters` characters; the full name is in its drop-down and tooltip."""
    from qtpy.QtWidgets import QComboBox

    native = combo.native
    native.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    native.setMinimumContentsLength(characters)
    native.currentTextChanged.connect(native.setToolTip)
