"""The ``ipyimagegen`` command: ``serve`` an Images API server, manage its participant ``tokens``, open
the ``studio`` in the browser.

Each subcommand has an ``_add_<name>`` function that declares its arguments and a ``cmd_<name>``
function that runs it; :func:`main` only parses and dispatches.
"""

from __future__ import annotations

import argparse
import csv
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ImagesError, describe_error
from .moderation import WordList
from .server.config import DEFAULTS, LOOPBACK_NAMES, MB, ServerConfig
from .server.database_address import holds_password, secrets_of
from .server.tokens import (
    DATABASE_VARIABLE,
    STATE_DIR_VARIABLE,
    Rate,
    TokenInfo,
    TokenStore,
    default_state_dir,
    open_store,
    token_db_path,
    without_password,
)
from .studio_app import StudioAppError, add_studio

UPSTREAM_CONCURRENCY = 32
"""Calls at once in proxy mode: each mostly waits on the upstream (20-60 s for a GPT image), so a class
of 30 is served side by side instead of queueing toward the time limit."""


class CommandError(Exception):
    """A problem the user can fix; printed without a traceback."""


# -- helpers ---------------------------------------------------------------------------------


def allowed_hosts(bound: str, extra: list[str]) -> list[str]:
    """The Host names the server answers to: any when it listens on every address, else the bound
    address, loopback and this machine's name, and the names given with --allow-host."""
    if bound in ("0.0.0.0", "::"):
        return ["*"]
    return [bound, *LOOPBACK_NAMES, socket.gethostname(), *extra]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is only reachable from this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _state_dir(args: argparse.Namespace) -> Path:
    return Path(args.state_dir).expanduser() if args.state_dir else default_state_dir()


def _database(args: argparse.Namespace) -> str | None:
    return getattr(args, "database", None) or os.environ.get(DATABASE_VARIABLE, "").strip() or None


def _open_store(args: argparse.Namespace, *, create: bool = False) -> TokenStore | None:
    """The token store: the PostgreSQL database given, else the state folder's SQLite file (None
    when it has none and ``create`` is False)."""
    database = _database(args)
    if database:
        _warn_of_a_password_in_the_arguments(args)
        try:
            return open_store(database)
        except Exception as exc:  # a wrong address, a server that is down, a missing extra
            raise CommandError(
                f"Could not open the database: {_describe_database_error(exc, database)}"
            ) from None
    path = token_db_path(_state_dir(args))
    if not create and not path.exists():
        return None
    return TokenStore(path)


def _warn_of_a_password_in_the_arguments(args: argparse.Namespace) -> None:
    """A password in --database is there for anyone on this machine to read (``ps``): say where it goes."""
    given = getattr(args, "database", None)
    if given and holds_password(given):
        print(
            "ipyimagegen: warning: the --database address holds a password, which anyone on this machine can "
            "read in the process list (ps). Give the password through PGPASSWORD or ~/.pgpass, or the whole "
            f"address through ${DATABASE_VARIABLE}, instead.",
            file=sys.stderr,
        )


def _describe_database_error(exc: Exception, database: str) -> str:
    """The error's message, its whitespace folded, without the address's password in any form."""
    return " ".join(without_password(str(exc), secrets_of(database)).split())[:300] or type(exc).__name__


def _when(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp)) if timestamp else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, headers))] + [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in cells
    )


def _rate(text: str) -> Rate:
    try:
        return Rate.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _above_zero(convert: type[float] | type[int], words: str) -> Callable[[str], Any]:
    """An argparse type: ``convert`` the text, refusing anything not above zero."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected {words}, got {text!r}")
        return value

    return parse


_positive = _above_zero(float, "a positive number")
_whole = _above_zero(int, "a whole number above 0")


def _fraction(text: str) -> float:
    """An argparse type: a share of GPUs or CPUs, 0 or more (0.5: two replicas share one)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"expected a number of GPUs or CPUs such as 1 or 0.5, got {text!r}")
    return value


def _replica_range(text: str) -> tuple[int, int]:
    """An argparse type: ``MIN:MAX`` replicas, 0 <= MIN <= MAX, MAX at least 1."""
    low, colon, high = text.partition(":")
    try:
        bounds = (int(low), int(high)) if colon else None
    except ValueError:
        bounds = None
    if bounds is None or not 0 <= bounds[0] <= bounds[1] or bounds[1] < 1:
        raise argparse.ArgumentTypeError(f"expected MIN:MAX replicas such as 1:8, got {text!r}")
    return bounds


def _state_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--state-dir",
        metavar="DIR",
        help=f"where the server keeps its tokens (default: ${STATE_DIR_VARIABLE} or {default_state_dir()})",
    )
    parser.add_argument(
        "--database",
        metavar="ADDRESS",
        help="keep tokens, budgets, usage and rate windows in PostgreSQL, shared by every server given it: "
        "postgresql://USER@HOST/DBNAME, or settings such as 'host=HOST dbname=NAME user=USER'; give the "
        f"password through PGPASSWORD or ~/.pgpass, not here (default: ${DATABASE_VARIABLE}, else the state "
        "folder's SQLite file)",
    )


# -- serve -----------------------------------------------------------------------------------


def _add_serve(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve an engine (or an upstream API) with the OpenAI Images API",
        description="Serve the OpenAI Images API for a workshop or a local model. Binds 127.0.0.1 unless "
        "--host is given; another address needs participant tokens (ipyimagegen tokens create).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    parser.add_argument(
        "--engine",
        choices=("preview", "diffusers", "ray"),
        default="preview",
        help="the engine that makes images; ray: replicas of the diffusers engine (with --model) or of the "
        "preview engine on Ray Serve",
    )
    parser.add_argument("--model", metavar="DIR", help="the model folder of --engine diffusers (or ray)")
    parser.add_argument(
        "--moderation-words",
        metavar="FILE",
        help="the word list the engine refuses prompts by, instead of the default one: a text file, one word "
        "or phrase a line, '~ word' for words moderation=low lets through, '! phrase' for ordinary phrases "
        "that hold a listed word ('! glue gun'), '[category]' lines, '#' comments "
        "(the default list's header shows the format); an empty file turns the check off. Not with "
        "--upstream: the upstream moderates, and its refusals pass through unchanged",
    )
    ray_group = parser.add_argument_group("Ray Serve (--engine ray; the ray extra)")
    ray_group.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="a running Ray cluster (ray://HEAD:10001, or auto on one of its nodes; default: a local instance)",
    )
    scale = ray_group.add_mutually_exclusive_group()
    scale.add_argument("--replicas", type=_whole, metavar="N", help="replicas of the engine (default: 1)")
    scale.add_argument(
        "--autoscale",
        type=_replica_range,
        metavar="MIN:MAX",
        help="from MIN to MAX replicas, following the calls waiting (e.g. 1:8)",
    )
    ray_group.add_argument(
        "--gpus-per-replica",
        type=_fraction,
        default=None,
        metavar="F",
        help="GPUs each replica holds, fractions allowed (default: 1 with --model, 0 for the preview engine)",
    )
    ray_group.add_argument(
        "--cpus-per-replica",
        type=_fraction,
        default=1.0,
        metavar="F",
        help="CPUs each replica holds (default: 1)",
    )
    parser.add_argument(
        "--upstream",
        metavar="URL",
        help="proxy mode: forward calls to this Images API (e.g. https://api.openai.com/v1)",
    )
    parser.add_argument(
        "--upstream-key-env",
        metavar="NAME",
        default="OPENAI_API_KEY",
        help="environment variable that holds the upstream API key (default: OPENAI_API_KEY)",
    )
    parser.add_argument(
        "--max-upload-mb",
        type=_positive,
        default=DEFAULTS.max_upload_bytes / MB,
        help="largest request body in MB (default: %(default)g)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive,
        default=DEFAULTS.request_timeout,
        help="seconds one call may take before a 504 (default: %(default)g)",
    )
    parser.add_argument(
        "--url-ttl",
        type=_positive,
        default=DEFAULTS.url_ttl,
        help="seconds a response_format=url image lasts (default: %(default)g)",
    )
    parser.add_argument(
        "--concurrency",
        "--upstream-concurrency",
        dest="concurrency",
        type=_whole,
        default=None,
        help="calls run at once, the rest waiting, served by participant in turn (default: "
        f"{DEFAULTS.max_concurrency} for an engine, {UPSTREAM_CONCURRENCY} with --upstream, whose calls mostly "
        "wait on the upstream)",
    )
    parser.add_argument(
        "--upstream-rate",
        type=_rate,
        metavar="IMAGES/PERIOD",
        help="images started per minute (e.g. 300/min, your organisation's limit), shared out by "
        "participant in turn; calls past it wait in the workshop queue. With --database it is the whole "
        "room's: servers sharing the database send no more than it together, and one started without it "
        "takes the rate written there (default: no limit)",
    )
    parser.add_argument(
        "--max-queue-wait",
        type=_positive,
        default=DEFAULTS.max_queue_wait,
        metavar="SECONDS",
        help="the longest a call may wait for its turn: one that would wait longer is answered at once "
        "(429 workshop_busy, with its place and when to come back); keep it below your proxy's "
        "timeout (default: %(default)g)",
    )
    parser.add_argument(
        "--replica-name",
        metavar="NAME",
        help="this server's name among those sharing --database, the same when it restarts (it then "
        "gives back what its last run reserved at once) (default: HOSTNAME:PORT)",
    )
    parser.add_argument(
        "--max-pixels",
        type=_whole,
        default=DEFAULTS.max_pixels,
        metavar="N",
        help="the most pixels of one image (default: %(default)d, 3840x2160)",
    )
    parser.add_argument(
        "--megapixels-at-once",
        type=_positive,
        default=DEFAULTS.pixels_at_once / 1_000_000,
        metavar="MP",
        help="megapixels the engine works on at once, inputs and outputs of all calls (default: %(default)g)",
    )
    parser.add_argument(
        "--any-model",
        action="store_true",
        help="take any model name (by default a model the engine does not serve is a 404)",
    )
    parser.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow browser calls from this origin (repeatable; none by default)",
    )
    parser.add_argument(
        "--allow-host",
        action="append",
        default=[],
        metavar="NAME",
        help="also answer requests for this host name (repeatable; the bound address and loopback by default)",
    )
    parser.add_argument(
        "--class-wall",
        action="store_true",
        help="let participants share pictures from their studio; /admin shows the newest (needs tokens)",
    )
    parser.add_argument(
        "--wall-rate",
        type=_rate,
        metavar="N/PERIOD",
        default=DEFAULTS.wall_rate,
        help="pictures one participant may share on the class wall (default: %(default)s; admin tokens: no limit)",
    )
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    _state_dir_argument(parser)
    parser.set_defaults(run=cmd_serve)


def _ray_flags(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "--ray-address": args.ray_address,
        "--replicas": args.replicas,
        "--autoscale": args.autoscale,
        "--gpus-per-replica": args.gpus_per_replica,
    }


def _ray_backend(args: argparse.Namespace, words: WordList | None) -> Any:
    """The engine deployed on Ray Serve: the diffusers engine with --model, else the preview engine."""
    if args.model and not Path(args.model).expanduser().exists():
        raise CommandError(
            f"There is no model at {args.model}: give --model a checkpoint folder or file that every Ray node "
            "can read at that path."
        )
    try:
        from .engines.ray_serve import EngineChoice, Scaling, deploy
    except ImportError as exc:
        raise CommandError(
            f'--engine ray needs the "ray" extra ({exc.name} is missing): pip install "ipyimagegen[ray,server]"'
        ) from None
    if args.model:
        choice = EngineChoice(
            "diffusers", str(Path(args.model).expanduser().resolve()), options={"moderation_words": words}
        )
    else:
        choice = EngineChoice("preview", options={"max_pixels": args.max_pixels, "moderation_words": words})
    gpus = args.gpus_per_replica if args.gpus_per_replica is not None else (1.0 if args.model else 0.0)
    low, high = args.autoscale or (None, None)
    scaling = Scaling(
        replicas=None if args.autoscale else (args.replicas or 1),
        min_replicas=low,
        max_replicas=high,
        gpus=gpus,
        cpus=args.cpus_per_replica,
    )
    print(
        f"Deploying the {choice.kind} engine on Ray Serve (every replica loads and warms its model)...",
        flush=True,
    )
    try:
        return deploy(choice, scaling, address=args.ray_address).backend
    except ImagesError:
        raise
    except Exception as exc:  # Ray's own errors: a cluster not found, a replica that could not start
        raise CommandError(f"Ray Serve could not deploy the {choice.kind} engine: {exc}") from None


def _build_backend(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The backend to serve, and the secrets it holds (never to be shown)."""
    if args.upstream:
        if args.engine != "preview" or args.model:
            raise CommandError("--upstream forwards calls to another server: leave out --engine and --model.")
        if args.moderation_words:
            raise CommandError(
                "--moderation-words is for the local engines: with --upstream the upstream API moderates every "
                "call and its refusals reach participants unchanged. Leave it out."
            )
        from .server.upstream import upstream_backend, upstream_key

        key = upstream_key(args.upstream_key_env)
        if key is None:
            print(
                f"Note: ${args.upstream_key_env} is not set: calling the upstream server without a key.",
                file=sys.stderr,
            )
        client = upstream_backend(
            args.upstream,
            key_env=args.upstream_key_env,
            timeout=args.timeout,
            connections=args.concurrency or UPSTREAM_CONCURRENCY,
        )
        return client, [key] if key else []
    words = WordList.read(args.moderation_words) if args.moderation_words else None  # read once, here
    if args.engine == "ray":
        return _ray_backend(args, words), []
    ray_only = [flag for flag, value in _ray_flags(args).items() if value is not None]
    if ray_only:
        raise CommandError(f"{', '.join(ray_only)} is for --engine ray.")
    if args.engine == "diffusers":
        if not args.model:
            raise CommandError(
                "--engine diffusers needs --model DIR (a local Stable Diffusion-family model folder)."
            )
        try:
            from .engines.diffusers_engine import DiffusersEngine
        except ImportError as exc:
            raise CommandError(
                f'The diffusers engine could not be loaded ({exc}): it needs the "local" extra, '
                'pip install "ipyimagegen[local]"'
            ) from None
        return DiffusersEngine(args.model, moderation_words=words), []
    if args.model:
        raise CommandError("--model is for --engine diffusers.")
    from .engines.preview import PreviewEngine

    return PreviewEngine(max_pixels=args.max_pixels, moderation_words=words), []


def _print_banner(args: argparse.Namespace, backend: Any, token_count: int, shared: bool = False) -> None:
    shown_host = socket.gethostname() if args.host in ("0.0.0.0", "::") else args.host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    base_url = f"http://{shown_host}:{args.port}/v1"
    key = "TOKEN" if token_count else '"local"'
    access = (
        f"{token_count} participant token(s); every call needs one (ipyimagegen tokens usage shows who used what)"
        if token_count or shared
        else "open: no participant tokens, so any program on this machine may call it"
    )
    if shared:
        access += "; tokens, budgets and rate windows shared in the database with every server given it"
    host_page = ""
    if token_count or shared:
        wall = ", with the class wall" if args.class_wall else ""
        host_page = f"The host's page{wall}: {base_url[: -len('/v1')]}/admin (sign in with an admin token)\n"
    print(
        f"ipyimagegen serve: {backend.name} on {base_url}\n"
        f"Access: {access}\n{host_page}\n"
        "Use it from Python:\n"
        f'    ipyimagegen.OpenAIClient(base_url="{base_url}", api_key={key})\n'
        f'    openai.OpenAI(base_url="{base_url}", api_key={key})\n'
        "or from the environment:\n"
        f"    export OPENAI_BASE_URL={base_url}\n"
        f"    export OPENAI_API_KEY={key.strip(chr(34))}\n"
        f"the Images guide's 2022 samples (openai 0.28): export OPENAI_API_BASE={base_url}\n"
        f'  (or openai.api_base = "{base_url}"); Node (openai 3): basePath: "{base_url}"\n',
        flush=True,
    )


def _default_concurrency(args: argparse.Namespace, backend: Any) -> int:
    """Calls run at once by default: the upstream's many, an engine's few, a few per Ray replica."""
    if args.upstream:
        return UPSTREAM_CONCURRENCY
    return backend.calls_at_once or DEFAULTS.max_concurrency


def serve_config(args: argparse.Namespace, backend: Any) -> ServerConfig:
    """The server's settings, from ``serve``'s arguments."""
    return ServerConfig(
        max_upload_bytes=int(args.max_upload_mb * MB),
        request_timeout=args.timeout,
        url_ttl=args.url_ttl,
        max_concurrency=args.concurrency or _default_concurrency(args, backend),
        upstream_rate=args.upstream_rate,
        max_pixels=args.max_pixels,
        pixels_at_once=int(args.megapixels_at_once * 1_000_000),
        any_model=args.any_model,
        cors_origins=args.cors_origin,
        allowed_hosts=allowed_hosts(args.host, args.allow_host),
        class_wall=args.class_wall,
        wall_rate=args.wall_rate,
        max_queue_wait=args.max_queue_wait,
        replica_name=args.replica_name or f"{socket.gethostname()}:{args.port}",
    )


def cmd_serve(args: argparse.Namespace) -> int:
    store = _open_store(args)
    token_count = len(store.tokens(include_revoked=False)) if store is not None else 0
    shared = store is not None and store.shared  # a database several servers share: always tokens
    if token_count == 0 and not shared and not is_loopback(args.host):
        raise CommandError(
            f"Refusing to serve on {args.host} without participant tokens: anyone who can reach this machine "
            "could use it. Create tokens first (ipyimagegen tokens create --name NAME --budget 50), "
            "or serve on 127.0.0.1."
        )
    try:
        import uvicorn

        from .server.app import make_app
        from .server.connections import server_config
    except ImportError as exc:
        raise CommandError(
            f'The server needs the "server" extra ({exc.name} is missing): pip install "ipyimagegen[server]"'
        ) from None
    if args.class_wall and not (token_count or shared):
        raise CommandError(
            "The class wall shows who shared each picture, so it needs participant tokens: "
            "create them first (ipyimagegen tokens create --count 30 --prefix group-)."
        )
    try:
        backend, secrets = _build_backend(args)
    except ImagesError as exc:
        raise CommandError(describe_error(exc)) from None
    app = make_app(
        backend,
        serve_config(args, backend),
        tokens=store if token_count or shared else None,
        secrets=secrets,
    )
    _print_banner(args, backend, token_count, shared)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The app logs one line per call, with the participant's name; uvicorn's access log would add nothing.
    server = uvicorn.Server(server_config(app, host=args.host, port=args.port, log_level=args.log_level))
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()  # a Ray deployment is taken down, a client's session closed
    return 0


# -- tokens ----------------------------------------------------------------------------------


def _add_tokens(subparsers: Any) -> None:
    parser = subparsers.add_parser("tokens", help="participant tokens of a workshop server")
    commands = parser.add_subparsers(title="token commands", metavar="COMMAND", required=True)

    create = commands.add_parser("create", help="make a token (shown once), or a class's tokens at once")
    whose = create.add_mutually_exclusive_group(required=True)
    whose.add_argument("--name", help="whose token it is (shown in the usage report)")
    whose.add_argument(
        "--count",
        type=_positive_count,
        metavar="N",
        help="make N tokens at once, named PREFIX01, PREFIX02, ...",
    )
    create.add_argument(
        "--prefix", default="participant-", help="the names' start with --count (default: participant-)"
    )
    create.add_argument(
        "--csv",
        metavar="FILE",
        help="with --count: write name,token,... to this new file (readable by you only)",
    )
    create.add_argument(
        "--budget", type=int, metavar="IMAGES", help="images the token may make (default: no limit)"
    )
    create.add_argument(
        "--budget-usd", type=_dollars, metavar="DOLLARS",
        help="estimated dollars the token may spend, from the catalogue's prices (default: no limit)",
    )  # fmt: skip
    create.add_argument(
        "--rate", type=_rate, metavar="N/PERIOD", help="requests allowed, e.g. 10/min (default: no limit)"
    )
    create.add_argument(
        "--expires",
        type=_expiry,
        metavar="WHEN",
        help="refused from then on: a time from now (90min, 3h, 2d) or a local date and time (2026-12-03T18:00)",
    )
    create.add_argument("--admin", action="store_true", help="the host's token: the /admin page and /metrics")
    create.add_argument("-q", "--quiet", action="store_true", help="print the token alone")
    _state_dir_argument(create)
    create.set_defaults(run=cmd_tokens_create)

    listing = commands.add_parser("list", help="list the tokens")
    _state_dir_argument(listing)
    listing.set_defaults(run=cmd_tokens_list)

    revoke = commands.add_parser("revoke", help="revoke a token (refused from the next call on)")
    revoke.add_argument("name", help="the token's name or id")
    _state_dir_argument(revoke)
    revoke.set_defaults(run=cmd_tokens_revoke)

    topup = commands.add_parser("topup", help="raise an active token's budgets")
    topup.add_argument("name", help="the token's name or id")
    topup.add_argument("--images", type=int, default=0, help="images to add to its image budget")
    topup.add_argument("--usd", type=_dollars, default=0.0, help="dollars to add to its dollar budget")
    _state_dir_argument(topup)
    topup.set_defaults(run=cmd_tokens_topup)

    room = commands.add_parser("workshop", help="the whole room's budget: show it, or set it")
    room.add_argument(
        "--budget",
        type=_limit_or_none(int),
        default="keep",
        metavar="IMAGES|none",
        help="images for the room",
    )
    room.add_argument(
        "--budget-usd",
        type=_limit_or_none(float),
        default="keep",
        metavar="DOLLARS|none",
        help="estimated dollars for the room",
    )
    _state_dir_argument(room)
    room.set_defaults(run=cmd_tokens_workshop)

    usage = commands.add_parser("usage", help="requests, images, errors and last use per token")
    usage.add_argument("--json", action="store_true", help="print JSON")
    _state_dir_argument(usage)
    usage.set_defaults(run=cmd_tokens_usage)


def _limits(info: TokenInfo) -> str:
    budget = f"budget {info.budget} images" if info.budget is not None else "no image budget"
    rate = info.rate.describe() if info.rate else "no rate limit"
    dollars = f", budget ${info.budget_usd:.2f}" if info.budget_usd is not None else ""
    until = f", until {_when(info.expires)}" if info.expires else ""
    return f"{budget}{dollars}, {rate}{until}" + (", admin" if info.admin else "")


_SPAN_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|minutes?|h|hours?|d|days?)\s*$")


def _expiry(text: str) -> float:
    """``90min``, ``3h``, ``2d`` from now, or an ISO date and time (local time): Unix seconds."""
    span = _SPAN_RE.match(text.lower())
    if span:
        unit = {"m": 60, "h": 3600, "d": 86400}[span.group(2)[0]]
        return time.time() + float(span.group(1)) * unit
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--expires takes a time from now (90min, 3h, 2d) or a date and time (2026-12-03T18:00), got {text!r}"
        ) from None
    when = moment.timestamp()
    if when <= time.time():
        raise argparse.ArgumentTypeError(f"--expires {text} is in the past: give a time to come.")
    return when


def _dollars(text: str) -> float:
    try:
        amount = float(text.strip().lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"give an amount of dollars such as 2.50, got {text!r}") from None
    if not amount >= 0 or amount == float("inf"):
        raise argparse.ArgumentTypeError(f"an amount of dollars is 0 or more, got {text!r}")
    return amount


def _limit_or_none(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if text == "keep":  # the default: leave it as it is
            return text
        if text.strip().lower() in ("none", "off", "unlimited"):
            return None
        value = _dollars(text) if kind is float else kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"a budget is 0 or more (or none), got {text!r}")
        return value

    return parse


def _positive_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--count takes a whole number of tokens, got {text!r}") from None
    if not 1 <= count <= 10_000:
        raise argparse.ArgumentTypeError(f"--count must be from 1 to 10000, got {count}")
    return count


def cmd_tokens_create(args: argparse.Namespace) -> int:
    store = _open_store(args, create=True)
    assert store is not None
    if args.count is not None:
        return _create_many(store, args)
    if args.csv:
        raise CommandError("--csv goes with --count (a class's tokens); one token is printed.")
    try:
        token, info = store.create(
            args.name,
            budget=args.budget,
            rate=args.rate,
            admin=args.admin,
            expires=args.expires,
            budget_usd=args.budget_usd,
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if args.quiet:
        print(token)
        return 0
    print(
        f"Token for {info.name} ({info.id}; {_limits(info)}):\n\n    {token}\n\n"
        f"It is shown only this once: hand it to {info.name} now (the server keeps only its hash).\n"
        "A running server accepts it at once; a server started without tokens must be restarted."
    )
    return 0


def _create_many(store: TokenStore, args: argparse.Namespace) -> int:
    """``--count N``: N tokens named PREFIX01..., all made or none, printed or written to a new CSV."""
    width = max(2, len(str(args.count)))
    names = [f"{args.prefix}{number:0{width}d}" for number in range(1, args.count + 1)]
    taken = sorted({info.name for info in store.tokens(include_revoked=False)} & set(names))
    if taken:
        raise CommandError(
            f"There are active tokens named {', '.join(taken[:5])}{' ...' if len(taken) > 5 else ''}: "
            "choose another --prefix, or revoke those first."
        )
    target = Path(args.csv).expanduser() if args.csv else None
    if target is not None and target.exists():
        raise CommandError(f"{target} exists already: choose a new file (tokens are never written over).")
    try:
        made = [
            store.create(
                name,
                budget=args.budget,
                rate=args.rate,
                admin=args.admin,
                expires=args.expires,
                budget_usd=args.budget_usd,
            )
            for name in names
        ]
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    rows = [
        (info.name, token, info.budget, info.rate.describe() if info.rate else "") for token, info in made
    ]
    if target is None:
        if not args.quiet:
            print(f"{len(made)} tokens ({_limits(made[0][1])}), shown only this once:\n")
        for name, token, _budget, _rate in rows:
            print(token if args.quiet else f"{name}\t{token}")
        return 0
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["name", "token", "budget_images", "rate"])
        writer.writerows(rows)
    print(
        f"{len(made)} tokens, {names[0]} to {names[-1]} ({_limits(made[0][1])}), written to {target} "
        "(readable by you only). Hand each participant their line; the server keeps only the tokens' hashes."
    )
    return 0


def cmd_tokens_list(args: argparse.Namespace) -> int:
    store = _open_store(args)
    infos = store.tokens() if store is not None else []
    if not infos:
        print(f"No tokens in {_state_dir(args)} (make one: ipyimagegen tokens create --name NAME).")
        return 0
    rows = [
        (
            i.name,
            i.id,
            i.budget,
            str(i.rate) if i.rate else None,
            "yes" if i.admin else "",
            _when(i.created),
            _status(i),
        )
        for i in infos
    ]
    print(_table(("NAME", "ID", "BUDGET", "RATE", "ADMIN", "CREATED", "STATUS"), rows))
    return 0


def _status(info: TokenInfo) -> str:
    if info.revoked is not None:
        return f"revoked {_when(info.revoked)}"
    if info.expired:
        return f"expired {_when(info.expires)}"
    return "active" + (f" until {_when(info.expires)}" if info.expires else "")


def cmd_tokens_revoke(args: argparse.Namespace) -> int:
    store = _open_store(args)
    if store is None:
        raise CommandError(f"No tokens in {_state_dir(args)}.")
    try:
        info = store.revoke(args.name)
    except KeyError as exc:
        raise CommandError(str(exc.args[0])) from None
    print(f"Revoked {info.name}'s token ({info.id}).")
    return 0


def cmd_tokens_topup(args: argparse.Namespace) -> int:
    store = _open_store(args)
    if store is None:
        raise CommandError(f"No tokens in {_state_dir(args)}.")
    try:
        info = store.top_up(args.name, images=args.images, usd=args.usd)
    except (KeyError, ValueError) as exc:
        raise CommandError(str(exc.args[0])) from None
    print(f"{info.name}: {_limits(info)}; used {info.images} images, about ${info.spent_usd:.2f}.")
    return 0


def _room_text(room: Any) -> str:
    images = (
        f"{room.images} of {room.budget_images} images"
        if room.budget_images is not None
        else f"{room.images} images (no limit)"
    )
    usd = (
        f"about ${room.spent_usd:.2f} of ${room.budget_usd:.2f}"
        if room.budget_usd is not None
        else f"about ${room.spent_usd:.2f} (no dollar limit)"
    )
    return f"The workshop has used {images}, {usd}."


def cmd_tokens_workshop(args: argparse.Namespace) -> int:
    store = _open_store(args, create=True)
    assert store is not None
    print(_room_text(store.set_workshop_budget(images=args.budget, usd=args.budget_usd)))
    return 0


def cmd_tokens_usage(args: argparse.Namespace) -> int:
    store = _open_store(args)
    infos = store.tokens() if store is not None else []
    if args.json:
        print(json.dumps([i.to_dict() for i in infos], indent=2))
        return 0
    if not infos:
        print(f"No tokens in {_state_dir(args)}.")
        return 0
    rows = [
        (
            i.name + ("" if i.active else f" ({_status(i).split(' ')[0]})"),
            i.requests,
            i.images,
            i.budget,
            i.images_left,
            f"{i.spent_usd:.2f}",
            f"{i.budget_usd:.2f}" if i.budget_usd is not None else None,
            i.errors,
            i.rejected,
            _when(i.last_used),
        )
        for i in infos
    ]
    headers = (
        "NAME",
        "REQUESTS",
        "IMAGES",
        "BUDGET",
        "LEFT",
        "SPENT $",
        "BUDGET $",
        "ERRORS",
        "REFUSED",
        "LAST USED",
    )
    print(_table(headers, rows))
    assert store is not None
    print("\n" + _room_text(store.workshop()))
    return 0


# -- entry point -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipyimagegen", description="ipyimagegen: explore text-to-image models; serve the Images API."
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_serve(subparsers)
    _add_tokens(subparsers)
    add_studio(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (CommandError, StudioAppError) as exc:
        print(f"ipyimagegen: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
