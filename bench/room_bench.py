"""The workshop room, run for real: 500 participants, two replicas on one PostgreSQL, a kill.

A workshop day as a host runs it (:mod:`.room`): 500 participants (50 greedy, keeping 3 calls in
flight) on one organisation's key, through two ``ipyimagegen serve --upstream`` replicas sharing
one PostgreSQL, in front of a stand-in upstream that allows 120 images a minute AND 2 a second
(6-14 s a call). Six minutes; at minute 3 one replica is killed (SIGKILL) and restarted 10 s later.
The quick run: 40 participants for 30 s, calls of 1-3 s, the kill at 10 s for 5 s; it checks that
the room runs, not its shares: 30 s is about one turn of the room, in which a greedy participant's
calls already queued go first in the second turn.

Figures: images per participant, greedy vs polite; upstream 429s that reached participants (the
workshop's own 429 ``workshop_busy`` counted apart); images charged vs received once the run has
drained (apart from those still reserved in ``leases``); the share of the upstream's rate used;
calls lost in the kill (an error after the client's retries); each replica's peak RSS and average
CPU; the upstream's 429s (the pacer's collisions with its limits).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from pathlib import Path

from .report import RATIO, Figure, Goal, Options, say
from .room import RoomPlan, RoomReport, run_room

ROOT = Path(__file__).resolve().parent.parent
SHARED_TEMP = "/tmp"
"""Where the cluster goes when the bench runs as root (``$TMPDIR`` may be a folder only root reaches)."""
RSS_GOAL_MB = 92.0
CPU_GOAL_CORES = 0.13
BACK_GOAL_S = 30.0
SHARE_GOAL = Goal(1.15, RATIO, "<=")  # greedy participants' images within 15 % of polite ones'
SHARE_FLOOR = Goal(0.85, RATIO, ">=")
RATE_GOAL = Goal(0.85, RATIO, ">=")


def plan(options: Options) -> RoomPlan:
    if options.quick:
        return RoomPlan(
            participants=40, greedy=4, duration_s=30.0, kill_at_s=10.0, down_s=5.0, call_s=(1.0, 3.0),
            think_s=(1.0, 3.0), join_s=3.0, settle_s=8.0,
        )  # fmt: skip
    return RoomPlan(participants=500, greedy=50, duration_s=360.0, kill_at_s=180.0)


def run(options: Options) -> list[Figure]:
    sys.path.insert(0, str(ROOT / "tests"))  # the tests' throwaway PostgreSQL cluster
    import pytest

    import postgres_helpers

    try:
        postgres_helpers.require_postgres()
    except (pytest.skip.Exception, pytest.fail.Exception) as missing:
        raise RuntimeError(str(missing)) from None
    room = plan(options)
    say(f"method: {room.describe()}")
    with contextlib.ExitStack() as stack:
        chosen = tempfile.tempdir
        if os.geteuid() == 0:  # the cluster is the postgres user's: its folder must be one that user reaches
            tempfile.tempdir = SHARED_TEMP
        try:
            cluster = stack.enter_context(postgres_helpers.postgres_cluster())
        finally:
            tempfile.tempdir = chosen
        report = run_room(room, cluster.database())
    return figures(report)


def details(report: RoomReport) -> list[str]:
    """The detail lines of a run: what the server offered, every answer, the charges, the replicas."""
    outcomes = ", ".join(f"{outcome} x{count}" for outcome, count in report.outcomes.most_common())
    received = sorted(report.received.values())
    replicas = "; ".join(
        f"{usage.name}: peak RSS {usage.peak_rss_mb:.0f} MB, CPU {usage.cpu_cores:.3f} core, "
        f"{usage.lives} life(s)"
        for usage in report.replicas
    )
    return [
        f"server options for a room: {', '.join(report.options) or 'none (a server before them)'}",
        f"answers: {outcomes}; failovers to the other replica: {report.failovers}; lost: "
        f"{dict(report.lost) or 'none'}",
        f"images received {report.images_received} (per participant min {received[0]}, max {received[-1]}; "
        f"greedy mean {report.mean_images(True):.2f}, polite mean {report.mean_images(False):.2f}); charged "
        f"{report.charged}; reserved in leases {report.reserved if report.reserved is not None else 'n/a'} "
        f"(read {report.settled_in_s:.1f} s after the run)",
        f"upstream: served {report.upstream_served} calls ({report.upstream_served_in_run} in the run), "
        f"made {report.upstream_images} images, refused {report.upstream_refused}; "
        f"rate used {report.rate_used:.1%}",
        f"replicas: {replicas}; restarted at {report.restarted_at or 0:.1f} s, first image from it after "
        + (f"{report.back_after_s:.1f} s" if report.back_after_s is not None else "never"),
    ]


def figures(report: RoomReport) -> list[Figure]:
    for line in details(report):
        say(line)
    greedy, polite = report.mean_images(True), report.mean_images(False)
    per_minute = float(report.plan.per_minute)
    none_over = Goal(0, compare="<=")
    back = report.back_after_s if report.back_after_s is not None else float("inf")
    made = [
        Figure("room: images per participant, greedy vs polite", greedy, "images", SHARE_GOAL, polite),
        Figure(
            "room: images per participant, greedy vs polite, floor", greedy, "images", SHARE_FLOOR, polite
        ),
        Figure(
            "room: upstream 429s that reached participants", float(report.rate_limited), "calls", none_over
        ),
        Figure("room: 429 workshop_busy answers", float(report.busy), "calls"),
        Figure(
            "room: images charged vs received, beyond leases", float(report.charge_gap), "images", none_over
        ),
        Figure(
            f"room: images per minute vs the upstream's {per_minute:g}",
            report.rate_used * per_minute,
            "images",
            RATE_GOAL,
            per_minute,
        ),
        Figure("room: calls lost in the kill", float(sum(report.lost.values())), "calls", none_over),
        Figure(
            "room: restarted replica's first image after restart", back, "s", Goal(BACK_GOAL_S, compare="<=")
        ),
    ]
    for usage in report.replicas:
        name = f"room: replica {usage.name}"
        made.append(Figure(f"{name} peak RSS", usage.peak_rss_mb, "MB", Goal(RSS_GOAL_MB, compare="<=")))
        made.append(
            Figure(f"{name} CPU, average", usage.cpu_cores, "cores", Goal(CPU_GOAL_CORES, compare="<="))
        )
    made.append(
        Figure("room: upstream 429s (the pacer's collisions)", float(report.upstream_refused), "calls")
    )
    return made
