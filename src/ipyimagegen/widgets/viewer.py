"""The results grid's viewer: one result's full picture over the page, with its details.

The full bytes go to the page only here, as a message buffer (see
:class:`~ipyimagegen.widgets.tile_grid.TileGridView`), and closing the viewer frees them. An edit's
Before picture is sent when the page asks for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..api.types import GeneratedImage
from ..media import sniff_mime_type
from .picture_facts import lineage_facts, picture_facts, pixel_size
from .tile_grid import TileGridView
from .tile_model import ResultTile, SavedResults, TileModel, read_image

log = logging.getLogger(__name__)

KINDS = {"GenerateRequest": "generation", "EditRequest": "edit", "VariationRequest": "variation"}

Report = Callable[[str, str], Any]
"""Shows a notice: ``report(message_html, kind)``."""


class ResultViewer:
    """Opens a tile of ``model`` in ``view``'s viewer, steps through the results and closes it.

    ``offers_share()`` says whether the viewer shows "Share with the class".
    """

    def __init__(
        self, model: TileModel, view: TileGridView, report: Report, offers_share: Callable[[], bool]
    ) -> None:
        self._model = model
        self._view = view
        self._report = report
        self._offers_share = offers_share
        self.viewed: ResultTile | None = None  # the tile open in the viewer

    @property
    def is_open(self) -> bool:
        return bool(self._view.viewer.get("open"))

    def open(self, tile: ResultTile) -> None:
        """Show the tile's full image over the page, with its details."""
        image = read_image(tile, self._report)
        if image is None:
            return
        self.viewed = tile
        filled = self._model.filled_tiles()
        place = filled.index(tile) if tile in filled else -1
        details = {
            "id": tile.id,
            "title": tile.label_text(),
            "prompt": tile.prompt,
            "revised_prompt": tile.revised_prompt if tile.revised_prompt != tile.prompt else "",
            "facts": result_facts(tile, image, self._model.saved),
            "actions": [
                "edit",
                "variations",
                *(["use_prompt"] if tile.prompt else []),
                *(["same_seed"] if image.seed is not None and tile.request is not None else []),
                *(["share"] if self._offers_share() else []),
            ],
            "mime": image.mime_type,
            "size": pixel_size(image.data),
            "filename": tile.file_name(image),
            "has_previous": place > 0,
            "has_next": 0 <= place < len(filled) - 1,
            "has_before": tile.has_before,
        }
        self._view.open_viewer(details, image.data)

    def step(self, by: int) -> None:
        """Show the next (``by=1``) or previous result, turning the page if need be."""
        filled = self._model.filled_tiles()
        if self.viewed not in filled:
            return
        place = filled.index(self.viewed) + by
        if 0 <= place < len(filled):
            target = filled[place]
            page = self._model.page_of(target)
            if page != self._model.page_index:
                self._model.show_page(page)
            self.open(target)

    def close(self) -> None:
        """Close the viewer and free the full image."""
        self.viewed = None
        if self.is_open:
            self._view.close_viewer()

    def send_before(self) -> bool:
        """The picture an edit in the viewer started from, for its Before/After toggle."""
        viewed = self.viewed
        before = self._before(viewed) if viewed is not None else None
        if viewed is None or before is None:
            return False
        data, mime = before
        self._view.send({"event": "before", "id": viewed.id, "mime": mime}, buffers=[data])
        return True

    def _before(self, tile: ResultTile) -> tuple[bytes, str] | None:
        """An edit's first input picture (bytes, MIME type): from its request, or read back from the
        gallery once the gallery keeps it; None for other results (or when that file is gone)."""
        images = getattr(tile.request, "images", None)
        if images:
            return images[0].data, images[0].mime_type
        if tile.before_id is None:
            return None
        try:
            data = self._model.saved.input_data(tile.before_id)
        except (OSError, KeyError) as exc:
            log.warning("could not read an edit's input back from the gallery: %s", exc)
            self._report("The picture this edit started from is no longer in the gallery.", "warning")
            return None
        return None if data is None else (data, sniff_mime_type(data))


def result_facts(tile: ResultTile, image: GeneratedImage, saved: SavedResults) -> list[list[str]]:
    """The viewer's table: size, settings, cost, where it is kept and what it was made from."""
    request = tile.request
    facts = picture_facts(image.data, image.mime_type)
    if request is not None:
        facts.append(["Made by", f"{KINDS.get(type(request).__name__, 'request')} on {request.model}"])
        for name in ("quality", "style", "background", "output_format", "input_fidelity"):
            value = getattr(request, name, None)
            if value:
                facts.append([name.replace("_", " ").capitalize(), str(value)])
    if image.seed is not None:
        facts.append(["Seed", str(image.seed)])
    outside = outside_mask_text(image.metadata)
    if outside:
        facts.append(["Outside the mask", outside])
    if tile.cost_label:
        facts.append(["Cost", tile.cost_label])
    item_id = image.metadata.get("gallery_id")
    if isinstance(item_id, str):
        try:
            item = saved.item(item_id)
        except Exception:  # gone from the gallery since: the rest still stands
            return [*facts, ["Gallery id", item_id]]
        if item is not None:
            facts += lineage_facts(saved.reader, item)
    return facts


def outside_mask_text(metadata: dict[str, Any]) -> str:
    """What an edit did outside its mask (from a result's metadata), or "" for other results."""
    changed = metadata.get("changed_outside_mask")
    if not isinstance(changed, (int, float)):
        return ""
    text = f"the model changed {changed:.1%} of the pixels"
    if metadata.get("pasted_back"):
        feather = metadata.get("feather") or 0
        text += "; the original was put back" + (f" (edge feathered {feather:g} px)" if feather else "")
    return text
