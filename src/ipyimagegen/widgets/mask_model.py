"""The painter's mask with undo and redo: strokes (rasterised by :mod:`ipyimagegen.masks`) as edits.

The mask is a ``(height, width)`` bool array at the image's full resolution; ``True`` marks the
pixels to regenerate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import masks
from ..masks import BBox, paint_rect, paint_segment, union_box


@dataclass(frozen=True)
class _Edit:
    """One undoable change: the pixels it flipped inside ``bbox``, bit-packed."""

    bbox: BBox
    flipped: np.ndarray

    def toggle(self, mask: np.ndarray) -> None:
        """Apply the change to ``mask`` if it is not applied, take it back if it is."""
        row0, row1, col0, col1 = self.bbox
        shape = (row1 - row0, col1 - col0)
        bits = np.unpackbits(self.flipped, count=shape[0] * shape[1]).reshape(shape).view(bool)
        mask[row0:row1, col0:col1] ^= bits


class EditableMask:
    """A full-resolution bool mask with undo and redo of whole edits.

    An edit is everything between :meth:`begin_edit` and :meth:`end_edit` (one brush stroke,
    a rectangle); :meth:`fill`, :meth:`clear`, :meth:`invert` and :meth:`replace` are edits of
    their own. The history stores only the flipped pixels of each edit's bounding box, bit-packed,
    and keeps at most ``history_limit`` edits.
    """

    def __init__(self, width: int, height: int, history_limit: int = 50) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"A mask needs a positive size; got {width}x{height}.")
        self._mask = np.zeros((height, width), dtype=bool)
        self._history_limit = max(int(history_limit), 0)
        self._undo: list[_Edit] = []
        self._redo: list[_Edit] = []
        self._before: np.ndarray | None = None
        self._dirty: BBox | None = None
        self.last_box: BBox | None = None
        """The region the last finished edit, undo or redo changed (for redrawing only that)."""

    @property
    def array(self) -> np.ndarray:
        """The live mask. Change it only through this object's methods, or undo goes wrong."""
        return self._mask

    @property
    def width(self) -> int:
        return self._mask.shape[1]

    @property
    def height(self) -> int:
        return self._mask.shape[0]

    @property
    def painted_fraction(self) -> float:
        """The share of pixels marked for regeneration, from 0 to 1."""
        return masks.marked_fraction(self._mask)

    @property
    def in_edit(self) -> bool:
        return self._before is not None

    @property
    def dirty_box(self) -> BBox | None:
        """The region the edit in progress has touched so far (changed or not)."""
        return self._dirty

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def begin_edit(self) -> None:
        """Start an edit; an unfinished one is finished first."""
        self.end_edit()
        self._before = self._mask.copy()
        self._dirty = None

    def end_edit(self) -> bool:
        """Finish the current edit and record it. Returns whether the mask changed."""
        before, dirty = self._before, self._dirty
        self._before, self._dirty = None, None
        if before is None or dirty is None:
            return False
        row0, row1, col0, col1 = dirty
        flipped = before[row0:row1, col0:col1] ^ self._mask[row0:row1, col0:col1]
        if not flipped.any():
            return False
        self.last_box = dirty
        self._undo.append(_Edit(dirty, np.packbits(flipped)))
        del self._undo[: max(len(self._undo) - self._history_limit, 0)]
        self._redo.clear()
        return True

    def paint_segment(
        self, x0: float, y0: float, x1: float, y1: float, radius: float, value: bool
    ) -> BBox | None:
        """Paint a round-ended thick line (image coordinates) as part of the current edit; the
        region it visited, or None."""
        box = paint_segment(self._mask, x0, y0, x1, y1, radius, value)
        self._touch(box)
        return box

    def paint_rect(self, x0: float, y0: float, x1: float, y1: float, value: bool) -> None:
        """Paint a rectangle (image coordinates) as part of the current edit."""
        self._touch(paint_rect(self._mask, x0, y0, x1, y1, value))

    def fill(self) -> bool:
        """Mark every pixel for regeneration, as one edit. Returns whether the mask changed."""
        return self._whole_edit(lambda mask: mask.fill(True))

    def clear(self) -> bool:
        """Unmark every pixel, as one edit. Returns whether the mask changed."""
        return self._whole_edit(lambda mask: mask.fill(False))

    def invert(self) -> bool:
        """Swap marked and unmarked pixels, as one edit. Returns whether the mask changed."""
        return self._whole_edit(lambda mask: np.logical_not(mask, out=mask))

    def combine(self, region: np.ndarray, value: bool) -> bool:
        """Set ``region``'s pixels (a bool array of the mask's shape) to ``value``, as one edit."""
        region = np.asarray(region, dtype=bool)
        if region.shape != self._mask.shape:
            raise ValueError(f"The region has shape {region.shape}; expected {self._mask.shape}.")
        rows = np.flatnonzero(region.any(axis=1))
        if not rows.size:
            return False
        cols = np.flatnonzero(region.any(axis=0))
        self.begin_edit()
        if value:
            self._mask |= region
        else:
            self._mask &= ~region
        self._dirty = (int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1)
        return self.end_edit()

    def replace(self, new_mask: np.ndarray) -> bool:
        """Replace the whole mask (same shape), as one edit. Returns whether the mask changed."""
        new_mask = np.asarray(new_mask, dtype=bool)
        if new_mask.shape != self._mask.shape:
            raise ValueError(f"The new mask has shape {new_mask.shape}; expected {self._mask.shape}.")
        return self._whole_edit(lambda mask: np.copyto(mask, new_mask))

    def undo(self) -> bool:
        """Take back the last edit. Returns ``False`` when there is nothing to undo."""
        self.end_edit()
        if not self._undo:
            return False
        edit = self._undo.pop()
        edit.toggle(self._mask)
        self.last_box = edit.bbox
        self._redo.append(edit)
        return True

    def redo(self) -> bool:
        """Apply again the last undone edit. Returns ``False`` when there is nothing to redo."""
        self.end_edit()
        if not self._redo:
            return False
        edit = self._redo.pop()
        edit.toggle(self._mask)
        self.last_box = edit.bbox
        self._undo.append(edit)
        return True

    def _touch(self, bbox: BBox | None) -> None:
        if self._before is None:
            raise RuntimeError("Call begin_edit() before painting, and end_edit() after.")
        self._dirty = union_box(self._dirty, bbox)

    def _whole_edit(self, change) -> bool:
        self.begin_edit()
        change(self._mask)
        self._dirty = (0, self.height, 0, self.width)
        return self.end_edit()
