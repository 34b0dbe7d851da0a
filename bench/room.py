"""A workshop room run for real: participants on one organisation's key, through two
``ipyimagegen serve --upstream`` replicas sharing one PostgreSQL database, in front of a stand-in
upstream that enforces OpenAI-style limits; one replica is killed mid-run and restarted.

- The upstream (:mod:`.upstream_standin`, uvicorn in a thread of this process) answers a GPT image
  model's generations after a while drawn from ``call_s``, and refuses past ``per_minute`` images a
  minute or ``per_second`` a second (429 ``rate_limit_exceeded``, ``Retry-After``).
- The replicas are ``python -m ipyimagegen serve --upstream URL --upstream-rate N/min --database ...``
  subprocesses, as a host runs them; their peak RSS and CPU are read from ``/proc``.
- Participants are asyncio tasks, each calling through the official ``openai.AsyncOpenAI`` client
  (its request, headers and timeout) with its own token. Each is sticky to one replica (its index
  % 2, as a load balancer hashing the token does), goes to the other while its own refuses
  connections and home again once it is back. The client's own retries are off so that every
  answer is seen: the participant retries a connection error or a 5xx twice with the SDK's backoff
  (what ``max_retries=2`` does) and waits out a 429 as its ``Retry-After`` asks. A polite
  participant keeps one call in flight and thinks a few seconds between calls; a greedy one keeps
  ``greedy_in_flight`` in flight without a pause.
- At ``kill_at_s`` one replica is killed (SIGKILL) and started again ``down_s`` later with the same
  arguments. At ``duration_s`` participants stop asking; calls still open after the calls at the
  upstream had time to finish are cancelled (their clients disconnect), and once the reservations
  have settled the images charged (``SUM(tokens.images)``) are read.

Against a server without ``--max-queue-wait`` or ``--replica-name`` the replicas run without them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MB = 1024 * 1024
RETRIES = 2
"""Retries of a connection error or a 5xx, as the OpenAI SDKs' ``max_retries`` default."""
STAND_IN_KEY = "sk-room-stand-in-key"
KEEP_LOGS_VARIABLE = "IPYIMAGEGEN_ROOM_LOGS"
"""A folder to copy the replicas' logs into at the end of a run (unset: they go with the run)."""
READY_S = 60.0
"""How long a replica may take to answer ``/health`` after it starts."""


@dataclass(frozen=True)
class RoomPlan:
    """One room's size and timeline (seconds from the first participant's join)."""

    participants: int
    greedy: int
    duration_s: float
    kill_at_s: float
    down_s: float = 10.0
    call_s: tuple[float, float] = (6.0, 14.0)
    think_s: tuple[float, float] = (2.0, 8.0)
    join_s: float = 10.0
    per_minute: int = 120
    per_second: int = 2
    concurrency: int = 32
    max_queue_wait_s: float = 240.0
    greedy_in_flight: int = 3
    settle_s: float = 30.0
    seed: int = 0

    def describe(self) -> str:
        think, call = self.think_s, self.call_s
        return (
            f"{self.participants} participants ({self.greedy} greedy: {self.greedy_in_flight} calls in "
            f"flight, no pause; the rest one call, thinking {think[0]:g}-{think[1]:g} s), joining over "
            f"{self.join_s:g} s; "
            f"2 replicas (--upstream-rate {self.per_minute}/min, --concurrency {self.concurrency}, "
            f"--max-queue-wait {self.max_queue_wait_s:g}) on one PostgreSQL; a stand-in upstream allowing "
            f"{self.per_minute}/min AND {self.per_second}/s, {call[0]:g}-{call[1]:g} s a call; "
            f"{self.duration_s:g} s, replica b killed at {self.kill_at_s:g} s and restarted "
            f"{self.down_s:g} s later"
        )


@dataclass(frozen=True)
class Answer:
    """One answer a participant got (or the error it met): where from, when, what."""

    participant: int
    replica: int | None
    sent: float
    answered: float
    outcome: str  # "200", "429 workshop_busy", "429 rate_limit_exceeded", "504 timeout", "refused", ...
    images: int = 0


@dataclass(frozen=True)
class ReplicaUsage:
    """A replica's peak RSS and its average CPU over its lives (both incarnations of a killed one)."""

    name: str
    peak_rss_mb: float
    cpu_cores: float
    lives: int


@dataclass
class RoomReport:
    """What a room run measured."""

    plan: RoomPlan
    options: list[str]
    received: dict[int, int]
    answers: list[Answer]
    lost: Counter[str]
    charged: int
    reserved: int | None  # images in ``leases`` when charged was read (None: the server keeps no leases)
    upstream_served: int
    upstream_refused: int
    upstream_images: int
    upstream_served_in_run: int
    run_s: float
    replicas: list[ReplicaUsage]
    restarted_at: float | None
    back_after_s: float | None  # from the restart to the restarted replica's first image answer
    failovers: int = 0
    settled_in_s: float = 0.0
    greedy: set[int] = field(default_factory=set)

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(answer.outcome for answer in self.answers)

    @property
    def rate_limited(self) -> int:
        """Upstream 429s (``rate_limit_exceeded``) that reached participants."""
        return self.outcomes["429 rate_limit_exceeded"]

    @property
    def busy(self) -> int:
        """The workshop's own 429 ``workshop_busy`` answers (a wait told at once: not a failure)."""
        return self.outcomes["429 workshop_busy"]

    @property
    def images_received(self) -> int:
        return sum(self.received.values())

    def mean_images(self, greedy: bool) -> float:
        counts = [count for who, count in self.received.items() if (who in self.greedy) == greedy]
        return statistics.fmean(counts) if counts else 0.0

    @property
    def rate_used(self) -> float:
        """Images the upstream let through in the run, over what its minute limit allows in that time."""
        return self.upstream_served_in_run / (self.plan.per_minute * self.run_s / 60)

    @property
    def charge_gap(self) -> int:
        """Images charged minus received, beyond those still reserved when they were read (0: they agree)."""
        gap = abs(self.charged - self.images_received)
        return max(0, gap - (self.reserved or 0))


# -- the replicas ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_options() -> set[str]:
    """The room options ``ipyimagegen serve`` takes (the server before them lacks some)."""
    shown = subprocess.run(
        [sys.executable, "-m", "ipyimagegen", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    return {option for option in ("--max-queue-wait", "--replica-name") if option in shown}


def _proc_usage(pid: int) -> tuple[float, float] | None:
    """A process's peak RSS (bytes) and CPU time so far (s), from ``/proc``; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    peak = next((int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return float(peak), (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


class Replica:
    """One ``ipyimagegen serve`` subprocess on a fixed port, started again with the same arguments."""

    def __init__(
        self, name: str, arguments: list[str], port: int, environment: dict[str, str], log: Path
    ) -> None:
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._command = [sys.executable, "-m", "ipyimagegen", "serve", *arguments, "--port", str(port)]
        self._environment = environment
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._lives: list[tuple[float, float, float]] = []  # (peak RSS, CPU s, seconds alive) per life
        self._last: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def start(self) -> None:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                self._command, env=self._environment, stdout=log, stderr=subprocess.STDOUT
            )
        self._started = time.monotonic()
        self._last = (0.0, 0.0, 0.0)

    def ready(self) -> bool:
        """Whether it answers ``/health`` (a RuntimeError with its log when it has exited)."""
        import httpx

        if self._process is not None and self._process.poll() is not None:
            raise RuntimeError(f"replica {self.name} exited ({self._process.returncode}):\n{self.log_tail()}")
        try:
            return httpx.get(self.url + "/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout: float = READY_S) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"replica {self.name} did not answer /health in {timeout:g} s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def sample(self) -> None:
        """Read its peak RSS and CPU time now (kept for the life it is in)."""
        if self._process is None:
            return
        usage = _proc_usage(self._process.pid)
        if usage is not None:
            self._last = (usage[0], usage[1], time.monotonic() - self._started)

    def _end_life(self) -> None:
        self._lives.append(self._last)
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as a machine lost or an out-of-memory kill does (its last usage read just before)."""
        assert self._process is not None
        self.sample()
        self._process.send_signal(signal.SIGKILL)
        self._process.wait()
        self._end_life()

    def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not exited within 10 s."""
        if self._process is None:
            return
        self.sample()
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._end_life()

    def usage(self) -> ReplicaUsage:
        lives = self._lives + ([self._last] if self._process is not None else [])
        alive = sum(life[2] for life in lives)
        return ReplicaUsage(
            self.name,
            max((life[0] for life in lives), default=0.0) / MB,
            sum(life[1] for life in lives) / alive if alive else 0.0,
            len(lives),
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


# -- the participants -----------------------------------------------------------------------------


class _Refused(Exception):
    """Both replicas refused the connection."""


class Room:
    """The participants' side of a run: their clients, their calls, and what they got."""

    def __init__(self, plan: RoomPlan, tokens: list[str], replicas: list[Replica]) -> None:
        self.plan = plan
        self.tokens = tokens
        self.replicas = replicas
        self.draw = random.Random(plan.seed)
        self.began = 0.0
        self.stopping = asyncio.Event()
        self.answers: list[Answer] = []
        self.received: Counter[int] = Counter()
        self.lost: Counter[str] = Counter()
        self.failovers = 0
        self.restarted_at: float | None = None
        self.greedy = set(range(plan.greedy))

    def now(self) -> float:
        return time.monotonic() - self.began

    async def run(self) -> None:
        import openai

        http = openai.DefaultAsyncHttpxClient()  # one pool for all, as many connections as the SDK's own
        clients = [
            [
                openai.AsyncOpenAI(
                    api_key=token, base_url=replica.url + "/v1", max_retries=0, http_client=http
                )
                for replica in self.replicas
            ]
            for token in self.tokens
        ]
        self.began = time.monotonic()
        tasks = [
            asyncio.create_task(self._participant(index, clients[index])) for index in range(len(clients))
        ]
        sampler = asyncio.create_task(self._sample())
        killer = asyncio.create_task(self._kill_and_restart())
        await asyncio.sleep(self.plan.duration_s)
        self.stopping.set()
        # calls at the upstream now finish; the rest (waiting their turn, or a Retry-After) are cancelled
        await asyncio.wait(tasks, timeout=self.plan.call_s[1] + 2.0)
        for task in [*tasks, killer, sampler]:
            task.cancel()
        await asyncio.gather(*tasks, killer, sampler, return_exceptions=True)
        await http.aclose()

    async def _sample(self) -> None:
        while True:
            for replica in self.replicas:
                replica.sample()
            await asyncio.sleep(0.5)

    async def _kill_and_restart(self) -> None:
        victim = self.replicas[-1]
        await asyncio.sleep(self.plan.kill_at_s)
        victim.kill()
        await asyncio.sleep(self.plan.down_s)
        victim.start()
        self.restarted_at = self.now()

    async def _participant(self, index: int, clients: list[Any]) -> None:
        await asyncio.sleep(self.draw.uniform(0, self.plan.join_s))
        lanes = self.plan.greedy_in_flight if index in self.greedy else 1
        await asyncio.gather(*(self._lane(index, clients) for _ in range(lanes)))

    async def _lane(self, index: int, clients: list[Any]) -> None:
        """Calls one after another: a polite participant thinks between them, a greedy one does not."""
        while not self.stopping.is_set():
            await self._call(index, clients)
            if index not in self.greedy:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.draw.uniform(*self.plan.think_s))

    async def _call(self, index: int, clients: list[Any]) -> None:
        """One image asked for until it comes: a 429 waited out as Retry-After asks, a connection error or
        a 5xx retried :data:`RETRIES` times with the SDK's backoff; an error past them is a call lost."""
        import openai

        retries = 0
        while True:
            sent = self.now()
            try:
                replica, images = await self._send(index, clients)
            except openai.RateLimitError as exc:
                outcome = f"429 {exc.code or exc.type}"
                self._record(index, None, sent, outcome)
                wait = _retry_after(exc.response.headers)
                if wait is None:  # a spent budget: no wait helps
                    self.lost[outcome] += 1
                    return
                await asyncio.sleep(wait)
                continue
            except (openai.APIStatusError, openai.APIConnectionError, _Refused) as exc:
                outcome = _outcome(exc)
                self._record(index, None, sent, outcome)
                if retries < RETRIES and _retryable(exc):
                    retries += 1
                    await asyncio.sleep(_backoff(retries, self.draw))
                    continue
                self.lost[outcome] += 1
                return
            self._record(index, replica, sent, "200", images)
            self.received[index] += images
            return

    async def _send(self, index: int, clients: list[Any]) -> tuple[int, int]:
        """Send to the participant's own replica, or to the other while its own refuses connections;
        returns the replica that answered and the images it gave."""
        import openai

        home = index % len(clients)
        order = [home] + [place for place in range(len(clients)) if place != home]
        for place in order:
            try:
                answer = await clients[place].images.generate(
                    model="gpt-image-2", prompt=f"a lighthouse at dusk, by participant {index}", quality="low"
                )
            except openai.APIConnectionError as exc:
                if _connection_refused(exc):
                    self.failovers += place == home
                    continue
                raise
            images = sum(1 for image in answer.data or [] if image.b64_json)
            return place, images
        raise _Refused("every replica refused the connection")

    def _record(self, index: int, replica: int | None, sent: float, outcome: str, images: int = 0) -> None:
        self.answers.append(Answer(index, replica, sent, self.now(), outcome, images))


def _connection_refused(exc: Exception) -> bool:
    """Whether the SDK's connection error is its HTTP library's ``ConnectError`` (httpx's or httpx2's,
    whichever the SDK runs on): the replica took no request, so another may take it at once."""
    return any(kind.__name__ == "ConnectError" for kind in type(exc.__cause__).__mro__)


def _outcome(exc: Exception) -> str:
    import openai

    if isinstance(exc, openai.APIStatusError):
        return f"{exc.status_code} {exc.code or exc.type or 'error'}"
    if isinstance(exc, _Refused):
        return "refused"
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else type(exc).__name__


def _retryable(exc: Exception) -> bool:
    """What the SDK retries: connection errors and timeouts, 408, 409 and 5xx (unless told not to)."""
    import openai

    if not isinstance(exc, openai.APIStatusError):
        return True
    if exc.response.headers.get("x-should-retry") == "false":
        return False
    return exc.status_code in (408, 409) or exc.status_code >= 500


def _retry_after(headers: Any) -> float | None:
    """The wait a 429 asks for: ``retry-after-ms``, else ``Retry-After`` seconds; None when it asks none."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, float(headers.get(name)) * scale)
    return None


def _backoff(retry: int, draw: random.Random) -> float:
    """The SDK's wait before retry ``retry`` (1, 2, ...): 0.5 s doubling, at most 8 s, less up to 25 %."""
    return min(0.5 * 2 ** (retry - 1), 8.0) * (1 - 0.25 * draw.random())


# -- the run --------------------------------------------------------------------------------------


def _raise_open_files() -> None:
    """Hundreds of participants hold a connection each: the soft open-file limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _make_tokens(database: str, count: int) -> list[str]:
    from ipyimagegen.server.tokens import PostgresTokenStore

    store = PostgresTokenStore(database)
    try:
        return [store.create(f"participant-{index:03d}")[0] for index in range(count)]
    finally:
        store.close()


def _read_charges(database: str) -> tuple[int, int | None]:
    """Images charged to every token, and images reserved in ``leases`` (None without that table)."""
    import psycopg

    with psycopg.connect(database, autocommit=True) as connection:
        charged = connection.execute("SELECT COALESCE(SUM(images), 0) FROM tokens").fetchone()
        try:
            reserved = connection.execute("SELECT COALESCE(SUM(images), 0) FROM leases").fetchone()
        except psycopg.errors.UndefinedTable:
            reserved = None
    return int(charged[0]) if charged else 0, int(reserved[0]) if reserved else None


def _idle(replicas: list[Replica]) -> bool:
    """Whether no replica runs or queues a call (a replica not answering counts as idle)."""
    import httpx

    for replica in replicas:
        try:
            queue = httpx.get(replica.url + "/health", timeout=2.0).json()["queue"]
        except (httpx.HTTPError, ValueError, KeyError):
            continue
        if queue["running"] or queue["waiting"]:
            return False
    return True


def _settle(database: str, replicas: list[Replica], limit_s: float) -> tuple[int, int | None, float]:
    """Wait (at most ``limit_s``) until no reservation is open and the replicas are idle; then read the
    charges. Returns charged, reserved and the seconds it waited."""
    began = time.monotonic()
    while True:
        charged, reserved = _read_charges(database)
        if (not reserved and _idle(replicas)) or time.monotonic() - began > limit_s:
            return charged, reserved, time.monotonic() - began
        time.sleep(0.5)


@contextlib.contextmanager
def _upstream(plan: RoomPlan) -> Iterator[tuple[Any, Any, Any]]:
    from ipyimagegen.server import ServerThread

    from .fixtures import photo_like_png
    from .upstream_standin import ImageCounts, ShortWindowUpstream, gpt_image_app

    counts = ImageCounts()
    limited = ShortWindowUpstream(
        gpt_image_app(photo_like_png(64), plan.call_s, counts, seed=plan.seed),
        [(plan.per_minute, 60.0), (plan.per_second, 1.0)],
    )
    with ServerThread(limited) as server:
        yield server, limited, counts


def run_room(plan: RoomPlan, database: str) -> RoomReport:
    """Run ``plan`` on the empty PostgreSQL database at ``database``."""
    _raise_open_files()
    tokens = _make_tokens(database, plan.participants)
    offered = serve_options()
    with (
        tempfile.TemporaryDirectory(prefix="ipyimagegen-room-") as folder,
        _upstream(plan) as (up, limited, counts),
    ):
        environment = {**os.environ, "OPENAI_API_KEY": STAND_IN_KEY, "IPYIMAGEGEN_SERVER_DIR": folder}
        environment.pop("IPYIMAGEGEN_DATABASE", None)
        arguments = [
            "--upstream", up.base_url, "--upstream-rate", f"{plan.per_minute}/min", "--database", database,
            "--concurrency", str(plan.concurrency),
        ]  # fmt: skip
        if "--max-queue-wait" in offered:
            arguments += ["--max-queue-wait", f"{plan.max_queue_wait_s:g}"]
        replicas = []
        for name in ("a", "b"):
            named = (
                [*arguments, "--replica-name", f"room-{name}"] if "--replica-name" in offered else arguments
            )
            replicas.append(
                Replica(name, named, free_port(), environment, Path(folder) / f"replica-{name}.log")
            )
        try:
            for replica in replicas:
                replica.start()
            for replica in replicas:
                replica.wait_ready()
            room = Room(plan, tokens, replicas)
            asyncio.run(room.run())
            run_end = room.began + plan.duration_s
            charged, reserved, settled_in = _settle(database, replicas, plan.settle_s)
        finally:
            for replica in replicas:
                replica.stop()
            kept = os.environ.get(KEEP_LOGS_VARIABLE, "").strip()
            if kept:  # the replicas' logs, to read after the run
                Path(kept).mkdir(parents=True, exist_ok=True)
                for log in Path(folder).glob("replica-*.log"):
                    shutil.copy(log, Path(kept) / log.name)
    restarted = room.restarted_at
    back = None
    if restarted is not None:
        served = [
            a.answered for a in room.answers if a.replica == 1 and a.outcome == "200" and a.sent >= restarted
        ]
        back = min(served) - restarted if served else None
    return RoomReport(
        plan=plan,
        options=sorted(offered),
        received={index: room.received[index] for index in range(plan.participants)},
        answers=room.answers,
        lost=room.lost,
        charged=charged,
        reserved=reserved,
        upstream_served=limited.served,
        upstream_refused=limited.refused,
        upstream_images=counts.images,
        upstream_served_in_run=sum(1 for at in limited.served_at if room.began <= at <= run_end),
        run_s=plan.duration_s,
        replicas=[replica.usage() for replica in replicas],
        restarted_at=restarted,
        back_after_s=back,
        failovers=room.failovers,
        settled_in_s=settled_in,
        greedy=room.greedy,
    )
