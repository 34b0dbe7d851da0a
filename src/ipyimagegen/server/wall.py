"""The class wall: pictures participants chose to share, shown on the host's page (``/admin``).

A participant's studio shares a result with ``POST /v1/wall`` (multipart ``image`` and
``prompt``; :mod:`ipyimagegen.api.class_wall`). The server keeps its own smaller copy (decoded
and encoded again here, never stored as sent), with the participant's name and the prompt, in
the tokens' database, so every server sharing that database shows one wall. It keeps the newest
:data:`KEEP` pictures, and at most :data:`PER_PARTICIPANT` of one participant's (a new one
pushes their oldest out). The host sees them at ``/admin`` and can take one down.

What a burst of posts can make the server hold is bounded: each participant shares at most
``ServerConfig.wall_rate`` (:mod:`~ipyimagegen.server.config`; the host's tokens: no limit, and a
post counts against the token's own rate too), a picture of more than :data:`MAX_PIXELS` is
refused from its header, and the wall decodes one picture at a time, in a thread of its own (a
JPEG already scaled down towards the wall's size): the memory one decode frees is the next one's,
where a pool of threads would each keep their own.
"""

from __future__ import annotations

import asyncio
import io
import secrets
import struct
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from anyio.to_thread import run_sync
from PIL import ImageFile, JpegImagePlugin, PngImagePlugin, WebPImagePlugin
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..api.class_wall import MAX_SHARED_PROMPT
from ..errors import ImageInputError
from ..imaging import image_size, thumbnail
from ..media import sniff_mime_type
from .caller import Gate
from .params import input_image, read_form
from .replies import ErrorReply, bad_request, retry_after_headers
from .tokens import Rate, TokenInfo, TokenStore

KEEP = 60
"""Pictures the wall keeps, newest first."""
PER_PARTICIPANT = 5
"""Pictures of one participant the wall keeps at once."""
WALL_SIDE = 768
"""The longest side of a picture as the wall keeps it."""
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 4096 * 4096
"""The most pixels of a shared picture (read from its header: more is refused before decoding)."""


@dataclass(frozen=True)
class WallPost:
    """One shared picture (its bytes are asked for apart: :meth:`WallStore.picture`)."""

    id: str
    name: str
    prompt: str
    created: float
    width: int
    height: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class WallStore:
    """The wall's records, in the database of ``tokens`` (SQLite or PostgreSQL)."""

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens
        self._database = tokens.database

    def add(self, token: TokenInfo, prompt: str, picture: bytes, mime: str) -> WallPost:
        """Put a picture (already made small) on the wall; the oldest beyond the limits go."""
        width, height = image_size(picture)
        post = WallPost(f"wall-{secrets.token_hex(8)}", token.name, prompt, time.time(), width, height)
        newest = "ORDER BY created DESC, id DESC LIMIT {keep}"
        with self._database.transaction() as db:
            # two posts at once (on two servers too) must not both count the other out and keep one too many
            db.hold(token.id)
            db.execute(
                "INSERT INTO wall (id, token_id, name, prompt, created, width, height, mime, picture) "
                "VALUES ({id}, {token_id}, {name}, {prompt}, {created}, {width}, {height}, {mime}, {picture})",
                token_id=token.id,
                picture=picture,
                mime=mime,
                **asdict(post),
            )
            db.execute(
                "DELETE FROM wall WHERE token_id = {token_id} AND id NOT IN "
                f"(SELECT id FROM wall WHERE token_id = {{token_id}} {newest})",
                token_id=token.id,
                keep=PER_PARTICIPANT,
            )
            db.execute(f"DELETE FROM wall WHERE id NOT IN (SELECT id FROM wall {newest})", keep=KEEP)
        return post

    def take_turn(self, token: TokenInfo, rate: Rate) -> float:
        """One post from the participant's wall rate (apart from the token's own rate): 0.0 if allowed,
        else the seconds until one is; a refusal counts in the token's usage record."""
        wait = self._tokens.take_rate(f"wall:{token.id}", rate)
        if wait > 0:
            self._tokens.record_rejected(token.id)
        return wait

    def posts(self) -> list[WallPost]:
        """The pictures on the wall, newest first."""
        with self._database.transaction() as db:
            rows = db.execute(
                "SELECT id, name, prompt, created, width, height FROM wall ORDER BY created DESC, id DESC"
            ).fetchall()
        return [
            WallPost(row["id"], row["name"], row["prompt"], row["created"], row["width"], row["height"])
            for row in rows
        ]

    def picture(self, post_id: str) -> tuple[bytes, str] | None:
        """A picture's bytes and MIME type, or None when it is not (or no longer) on the wall."""
        with self._database.transaction() as db:
            row = db.execute("SELECT picture, mime FROM wall WHERE id = {id}", id=post_id).fetchone()
        return (bytes(row["picture"]), row["mime"]) if row is not None else None

    def remove(self, post_id: str) -> bool:
        """Take a picture down; False when it was not there."""
        with self._database.transaction() as db:
            return bool(db.execute("DELETE FROM wall WHERE id = {id}", id=post_id).rowcount)


_HEADERS: dict[str, Callable[[io.BytesIO], ImageFile.ImageFile]] = {
    "image/png": PngImagePlugin.PngImageFile,
    "image/jpeg": JpegImagePlugin.JpegImageFile,
    "image/webp": WebPImagePlugin.WebPImageFile,
}


def check_size(data: bytes) -> None:
    """Refuse, from its header alone, a picture of more than :data:`MAX_PIXELS` (a 400 that says the
    most the wall takes); :class:`ImageInputError` for a header that cannot be read."""
    opener = _HEADERS.get(sniff_mime_type(data))
    if opener is None:
        raise ImageInputError("it is not a PNG, JPEG or WebP picture.", hint="Share a PNG or JPEG.")
    try:
        with opener(io.BytesIO(data)) as image:  # the header only: no pixels yet
            width, height = image.size
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise ImageInputError(
            f"its header cannot be read ({exc}).", hint="Export the picture again, then share it."
        ) from None
    if width * height > MAX_PIXELS:
        raise bad_request(
            f"The picture is {width}x{height} ({width * height / 1e6:.1f} million pixels); the wall takes "
            f"pictures of at most {MAX_PIXELS:,} pixels (4096x4096): share a smaller copy.",
            "image",
            code="image_too_large",
        )


def wall_picture(data: bytes) -> tuple[bytes, str]:
    """The wall's own copy of an uploaded picture (its size checked: :func:`check_size`): decoded, a JPEG
    already scaled down by up to 8, made at most :data:`WALL_SIDE` px (reduced by a whole factor first),
    encoded again."""
    return thumbnail(data, WALL_SIDE)


def readable_prompt(text: str) -> str:
    """The prompt as the wall shows it: no control characters but line breaks, at most its length."""
    kept = "".join(ch for ch in text if ch == "\n" or unicodedata.category(ch)[0] != "C")
    return kept.strip()[:MAX_SHARED_PROMPT]


class ClassWall:
    """The wall's routes: ``POST /v1/wall`` for participants, ``/admin/api/wall...`` for the host.
    ``store``: None on a server without the wall. ``rate``: pictures one participant may share."""

    def __init__(self, gate: Gate, store: WallStore | None, *, rate: Rate) -> None:
        self.gate = gate
        self.store = store
        self.rate = rate
        self._decoder = ThreadPoolExecutor(1, thread_name_prefix="ipyimagegen-wall")
        """Where pictures are decoded, one at a time (the thread starts with the first post)."""

    def _wall(self) -> WallStore:
        if self.store is None:
            raise ErrorReply(
                404,
                "This server has no class wall (the host starts it with ipyimagegen serve --class-wall).",
                code="not_found",
            )
        return self.store

    async def share(self, request: Request) -> Response:
        caller = await self.gate.caller(request)
        wall = self._wall()
        token = caller.token
        assert token is not None  # a wall needs tokens: make_app makes sure
        await caller.check_open()  # a paused room shares nothing either
        await self._check_rate(wall, token)
        await caller.check_rate()
        if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
            raise ErrorReply(
                415,
                "Share a picture as multipart/form-data: 'image' and 'prompt'.",
                code="unsupported_content_type",
            )
        async with request.form(max_files=1, max_fields=2) as form:
            parts = await read_form(form, ("image",), {"prompt": str})
        sent = parts.files.get("image", [])
        if not sent:
            raise bad_request(
                "Missing required parameter: 'image'.", "image", code="missing_required_parameter"
            )
        filename, data = sent[0]
        if len(data) > MAX_FILE_BYTES:
            raise bad_request(
                f"The picture is {len(data) / 1024 / 1024:.1f} MB; the wall takes at most 8 MB.",
                "image",
                code="image_too_large",
            )
        upload = input_image(data, filename, "image")
        try:
            await run_sync(check_size, upload.data)
            loop = asyncio.get_running_loop()
            picture, mime = await loop.run_in_executor(self._decoder, wall_picture, upload.data)
        except ImageInputError as exc:
            raise bad_request(
                f"The picture cannot be shown: {exc.message}", "image", code="invalid_image"
            ) from None
        prompt = readable_prompt(str(parts.fields.get("prompt", "")))
        post = await run_sync(wall.add, token, prompt, picture, mime)
        return JSONResponse({"object": "wall.post", **post.to_dict()}, status_code=201)

    async def _check_rate(self, wall: WallStore, token: TokenInfo) -> None:
        """429 past the wall's rate for this participant (the host's tokens have none)."""
        if token.admin:
            return
        wait = await run_sync(wall.take_turn, token, self.rate)
        if wait > 0:
            raise ErrorReply(
                429,
                f"The class wall takes {self.rate.describe().replace('requests', 'pictures')} from each "
                f"participant: share again in {max(1, round(wait))} s.",
                type="requests",
                code="rate_limit_exceeded",
                headers=retry_after_headers(wait),
            )

    async def posts(self, request: Request) -> Response:
        await self.gate.admin(request)
        if self.store is None:
            return JSONResponse({"enabled": False, "posts": []}, headers={"Cache-Control": "no-store"})
        posts = await run_sync(self.store.posts)
        return JSONResponse(
            {"enabled": True, "posts": [post.to_dict() for post in posts]},
            headers={"Cache-Control": "no-store"},
        )

    async def picture(self, request: Request) -> Response:
        await self.gate.admin(request)
        found = await run_sync(self._wall().picture, request.path_params["post_id"])
        if found is None:
            raise ErrorReply(404, "This picture is no longer on the wall.", code="not_found")
        data, mime = found
        return Response(
            data,
            media_type=mime,
            headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    async def remove(self, request: Request) -> Response:
        await self.gate.admin(request)
        if not await run_sync(self._wall().remove, request.path_params["post_id"]):
            raise ErrorReply(404, "This picture is no longer on the wall.", code="not_found")
        return JSONResponse({"removed": request.path_params["post_id"]})
