"""The workshop queue under a full room: 100 participants against an upstream limited to 60 images a minute.

The server (in this process, over loopback HTTP) runs a fake upstream (stored pictures, 50 ms a
call, as a model at work) behind its fair queue with ``upstream_rate`` 60 images per "minute" and
8 calls at once. Time is compressed 50 times, so a minute lasts 1.2 s and the run stays short;
every figure is given in the run's own seconds. Each of
the 100 participants (a thread with its own token and HTTP session) asks again as soon as an answer
comes: 90 ask for one image at a time, 10 for ten (the greedy loop that would starve a room served
first come, first served). Shares are images received per participant in the steady part of the
run (after the first queue round); a queue round is the time the upstream takes to give every
participant one image (100 images at 60 per minute). A ten-image call takes ten rounds of its
participant's turns, so shares are even over runs of tens of rounds, not within one: the quick run
(8 rounds) is too short for them. Waits are each call's time from sending to the answer.

The second room is proxy mode against an upstream that enforces its limit over short windows as
well as the minute (OpenAI may enforce a minute's limit over seconds): a stand-in upstream allows
60 images a minute AND 2 a second, refusing past either with 429 and ``Retry-After``. The server
forwards to it as ``ipyimagegen serve --upstream URL --upstream-rate 60/min`` does (the same
client, the default concurrency). Time is compressed 20 times (a minute lasts 3 s, a call at the
upstream 150 ms). One greedy participant keeps 5 calls in flight and re-sends at once after a
refusal; nine polite ones keep one call in flight and wait what ``Retry-After`` asks. It reports
the greedy participant's images against the polite ones' median, the images per minute, the
upstream's refusals, the refusals that reached participants, and the calls that timed out. The
room runs twice: with ``--upstream-rate`` at the upstream's limit, and set twice too high (the
upstream refuses, and the server has to slow down on its own).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

import requests

from .report import RATIO, Figure, Goal, Options, say
from .upstream_standin import ShortWindowUpstream

PARTICIPANTS, GREEDY, GREEDY_N = 100, 10, 10
RATE_IMAGES, MINUTE_S = 60, 1.2  # 60 images a minute, the minute compressed 50 times
UPSTREAM_DELAY_S = 0.05
CONCURRENCY = 8


def run(options: Options) -> list[Figure]:
    return _room(options) + _paced_upstream(options)


def _room(options: Options) -> list[Figure]:
    from ipyimagegen.server import ServerConfig, ServerThread, TokenStore, make_app
    from ipyimagegen.server.pacer import burst_of
    from ipyimagegen.server.tokens import Rate

    from .fixtures import InstantBackend, photo_like_png

    photo_like_png(256)  # made before the first call, not during it
    duration = options.pick(16.0, 70.0)  # the full run spans three ten-image calls' turns (10 rounds each)
    round_s = PARTICIPANTS / RATE_IMAGES * MINUTE_S
    received: dict[str, list[tuple[float, int]]] = defaultdict(list)  # participant -> (answered at, images)
    waits: list[tuple[float, float, int]] = []  # (sent at, wait, images)
    refused = Counter[str]()
    lock = threading.Lock()
    stop = threading.Event()
    with TemporaryDirectory(prefix="ipyimagegen-bench-queue-") as folder:
        store = TokenStore.in_dir(Path(folder))
        tokens = [(f"p{i:03d}", store.create(f"p{i:03d}")[0]) for i in range(PARTICIPANTS)]
        app = make_app(
            InstantBackend(delay_s=UPSTREAM_DELAY_S),
            ServerConfig(
                max_concurrency=CONCURRENCY, upstream_rate=Rate(RATE_IMAGES, MINUTE_S), request_timeout=600
            ),
            tokens=store,
        )
        with ServerThread(app) as server:
            url = server.base_url + "/images/generations"
            began = time.monotonic()

            def participant(index: int, name: str, token: str) -> None:
                n = GREEDY_N if index < GREEDY else 1
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {token}"
                body = {"model": "dall-e-2", "prompt": f"a fox, by {name}", "size": "256x256", "n": n}
                while not stop.is_set():
                    sent = time.monotonic()
                    try:
                        answer = session.post(url, json=body, timeout=120)
                    except requests.RequestException as exc:
                        with lock:
                            refused[type(exc).__name__] += 1
                        continue
                    done = time.monotonic()
                    with lock:
                        if answer.status_code == 200:
                            received[name].append((done - began, len(answer.json()["data"])))
                            waits.append((sent - began, done - sent, n))
                        else:
                            refused[str(answer.status_code)] += 1
                session.close()

            threads = [
                threading.Thread(target=participant, args=(i, name, token), daemon=True)
                for i, (name, token) in enumerate(tokens)
            ]
            for thread in threads:
                thread.start()
            time.sleep(duration)
            stop.set()
            for thread in threads:
                thread.join(timeout=120)
    steady_from, steady_to = round_s, duration
    shares = {
        name: sum(images for at, images in received.get(name, []) if steady_from <= at < steady_to)
        for name, _token in tokens
    }
    greedy_names = {name for name, _ in tokens[:GREEDY]}
    modest = [shares[name] for name in shares if name not in greedy_names]
    greedy = [shares[name] for name in greedy_names]
    everyone = list(shares.values())
    steady_waits = sorted(wait for sent, wait, _n in waits if sent >= steady_from)
    p95_wait = steady_waits[int(len(steady_waits) * 0.95)] if steady_waits else float("inf")
    total = sum(images for got in received.values() for at, images in got if at < duration)
    say(
        f"method: {PARTICIPANTS} participants ({GREEDY} asking {GREEDY_N} images a call, the rest 1), each asking "
        f"again at once; a fake upstream ({UPSTREAM_DELAY_S * 1000:.0f} ms a call); upstream_rate {RATE_IMAGES} "
        f"images per {MINUTE_S:g} s (a minute compressed 50x), {CONCURRENCY} calls at once; {duration:g} s; "
        f"a queue round = {round_s:g} s"
    )
    say(
        f"{total} images answered in {duration:g} s ({total / duration * MINUTE_S:.1f} per compressed minute; "
        f"the limit is {RATE_IMAGES}, after a first burst of {burst_of(Rate(RATE_IMAGES, MINUTE_S)):g}); "
        f"refused or failed calls: "
        f"{dict(refused) or 'none'}"
    )
    say(
        f"images per participant in the steady part: min {min(everyone)}, median {statistics.median(everyone):g}, "
        f"max {max(everyone)}; one-image participants median {statistics.median(modest):g}, ten-image "
        f"participants median {statistics.median(greedy):g}"
    )
    say(
        f"waits: median {statistics.median(steady_waits):.2f} s, p95 {p95_wait:.2f} s "
        f"({p95_wait / round_s:.2f} queue rounds)"
    )
    return [
        Figure(
            f"workshop queue: images per participant, most vs fewest ({PARTICIPANTS} in the room)",
            float(max(everyone)),
            "images",
            Goal(1.5, on=RATIO, compare="<="),
            float(max(1, min(everyone))),
        ),
        Figure(
            "workshop queue: p95 wait vs two queue rounds",
            p95_wait,
            "s",
            Goal(1.0, on=RATIO, compare="<="),
            2 * round_s,
        ),
    ]


# -- proxy mode against an upstream that enforces short windows ------------------------------------

COMPRESSION = 20  # time runs 20 times faster: a minute lasts 3 s
PACED_MINUTE_S = 60 / COMPRESSION
UPSTREAM_PER_MINUTE, UPSTREAM_PER_SECOND = 60, 2
POLITE, GREEDY_IN_FLIGHT = 9, 5
PACED_CALL_S = 3.0 / COMPRESSION  # a call at the upstream: 3 s, as a small DALL-E 2 image takes
PACED_TIMEOUT_S = 300.0 / COMPRESSION  # serve's --timeout, 300 s


def _paced_upstream(options: Options) -> list[Figure]:
    """The room against the short-window upstream: with ``--upstream-rate`` set to its limit, then set
    twice too high (so the upstream refuses, and the server must slow down on its own)."""
    duration = options.pick(9.0, 45.0)  # 3 and 15 compressed minutes
    return _paced_room(duration, UPSTREAM_PER_MINUTE, "paced upstream") + _paced_room(
        duration, 2 * UPSTREAM_PER_MINUTE, "paced upstream, rate set 2x too high"
    )


def _paced_room(duration: float, told_per_minute: int, title: str) -> list[Figure]:
    from ipyimagegen.cli import UPSTREAM_CONCURRENCY
    from ipyimagegen.server import ServerConfig, ServerThread, TokenStore, make_app
    from ipyimagegen.server.tokens import Rate
    from ipyimagegen.server.upstream import upstream_backend

    from .fixtures import InstantBackend, photo_like_png

    photo_like_png(256)
    received: Counter[str] = Counter()
    answers = Counter[str]()  # status (or exception name) -> calls
    lock = threading.Lock()
    stop = threading.Event()
    upstream = ShortWindowUpstream(
        make_app(InstantBackend(delay_s=PACED_CALL_S), ServerConfig(max_concurrency=64)),
        [(UPSTREAM_PER_MINUTE, PACED_MINUTE_S), (UPSTREAM_PER_SECOND, PACED_MINUTE_S / 60)],
    )
    with TemporaryDirectory(prefix="ipyimagegen-bench-paced-") as folder, ServerThread(upstream) as up:
        store = TokenStore.in_dir(Path(folder))
        names = ["greedy"] + [f"polite{i}" for i in range(POLITE)]
        tokens = {name: store.create(name)[0] for name in names}
        client = upstream_backend(up.base_url, key_env="IPYIMAGEGEN_BENCH_NO_KEY", timeout=PACED_TIMEOUT_S)
        app = make_app(
            client,
            ServerConfig(
                max_concurrency=UPSTREAM_CONCURRENCY,
                upstream_rate=Rate(told_per_minute, PACED_MINUTE_S),
                request_timeout=PACED_TIMEOUT_S,
            ),
            tokens=store,
        )
        with ServerThread(app) as server:
            url = server.base_url + "/images/generations"
            body = {"model": "dall-e-2", "prompt": "a fox", "size": "256x256", "response_format": "b64_json"}
            began = time.monotonic()

            def participant(name: str) -> None:
                session = requests.Session()
                session.headers["Authorization"] = f"Bearer {tokens[name]}"
                while not stop.is_set():
                    try:
                        answer = session.post(url, json=body, timeout=PACED_TIMEOUT_S * 2)
                    except requests.RequestException as exc:
                        with lock:
                            answers[type(exc).__name__] += 1
                        continue
                    with lock:
                        answers[str(answer.status_code)] += 1
                        if answer.status_code == 200 and time.monotonic() - began < duration:
                            received[name] += len(answer.json()["data"])
                    if answer.status_code == 429 and name != "greedy":  # the polite wait as they are asked
                        asked = answer.headers.get("retry-after-ms")
                        stop.wait(float(asked) / 1000 if asked else 1.0)
                session.close()

            threads = [
                threading.Thread(target=participant, args=(name,), daemon=True)
                for name in ["greedy"] * GREEDY_IN_FLIGHT + names[1:]
            ]
            for thread in threads:
                thread.start()
            time.sleep(duration)
            stop.set()
            for thread in threads:
                thread.join(timeout=PACED_TIMEOUT_S * 2 + 5)
        client.close()
    polite = statistics.median(received[name] for name in names[1:])
    total = sum(received.values())
    timeouts = answers["504"] + answers["ReadTimeout"]
    say(
        f"{title}: proxy mode, upstream_rate {told_per_minute}/min against a stand-in upstream allowing "
        f"{UPSTREAM_PER_MINUTE}/min AND {UPSTREAM_PER_SECOND}/s (429 + Retry-After past either); 1 participant "
        f"keeping {GREEDY_IN_FLIGHT} calls in flight, {POLITE} keeping 1; {UPSTREAM_CONCURRENCY} calls at once; "
        f"time compressed {COMPRESSION}x (a minute = {PACED_MINUTE_S:g} s, a call {PACED_CALL_S:g} s); "
        f"{duration:g} s"
    )
    say(
        f"{title}: images: greedy {received['greedy']}, polite median {polite:g} "
        f"(min {min(received[n] for n in names[1:])}, max {max(received[n] for n in names[1:])}); "
        f"{total} in all, {total / duration * PACED_MINUTE_S:.1f} per minute; upstream served {upstream.served}, "
        f"refused {upstream.refused}; answers {dict(answers)}"
    )
    return [
        Figure(
            f"{title}: greedy (5 in flight) vs polite median",
            float(received["greedy"]),
            "images",
            Goal(1.5, on=RATIO, compare="<="),
            float(polite),
        ),
        Figure(
            f"{title}: images per minute vs the upstream's 60",
            total / duration * PACED_MINUTE_S,
            "images",
            Goal(0.9, on=RATIO, compare=">="),
            float(UPSTREAM_PER_MINUTE),
        ),
        Figure(f"{title}: 429s from the upstream", float(upstream.refused), "calls"),
        Figure(
            f"{title}: 429s that reached participants", float(answers["429"]), "calls", Goal(0, compare="<=")
        ),
        Figure(f"{title}: calls timed out", float(timeouts), "calls", Goal(0, compare="<=")),
    ]
