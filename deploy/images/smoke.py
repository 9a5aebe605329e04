"""Start every built image against the local broker and prove it works; print the timing table.

Run by ``deploy/images/build-all.sh`` with the repository's ``.venv`` Python (it needs
``quorum_common`` and ``quorum_sidecar``)::

    python deploy/images/smoke.py --docker DOCKER --tag TAG --builds builds.tsv [SERVICE ...]

Each image is started as its own container on the host network with its own ``QUORUM_TOPIC_PREFIX``
namespace, HTTP port and consumer group, then stopped with SIGTERM, which must end it with exit code 0.
Python images run with ``QUORUM_AVRO_BACKEND=avrofast``, so an image without the codec's compiled fast
path fails to start:

- a consumer service: ``/healthz`` answers 200, then ``/readyz`` turns 200 (partitions assigned)
  and its consumer group is listed by the broker;
- ``ingest`` (a source): ``/healthz`` answers 200 and its bars arrive on ``<prefix>md.bars``;
- ``desk``: the embedded desk runs a short window and writes its report;
- ``risk-sidecar``: ``/metrics`` answers 200 and a GET_STATE over its Unix socket answers ACTIVE.

Exits 1 when any image fails; the topics and consumer groups of the run are deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from containers import CheckFailed, Docker, free_port, http_status, wait_until
from quorum_common.bus.kafka_admin import ensure_topics
from quorum_common.schemas import default_catalog

STARTUP_TIMEOUT_S = 90.0
FAST_CODEC = {"QUORUM_AVRO_BACKEND": "avrofast"}
"""Every Python image must carry the codec's compiled fast path: without it the service refuses to start."""
DESK_ARGS = ["run", "--start", "2018-01-01", "--end", "2018-03-31", "--reports", "/app/reports", "--run-id", "imgtest"]


@dataclass
class Result:
    """The outcome of one image's smoke check; seconds are measured from ``docker run``."""

    service: str
    up_s: float | None = None
    """Until ``/healthz`` (``/metrics`` for the sidecar) answered 200."""
    joined_s: float | None = None
    """Until the service joined the broker (or: bars on the topic, report written, socket answered)."""
    error: str = ""


@dataclass
class Context:
    """What every check needs."""

    docker: Docker
    tag: str
    bootstrap: str
    prefix: str

    def image(self, service: str) -> str:
        """The image reference of a service."""
        return f"quorum-{service}:{self.tag}"

    def env(self, port: int) -> dict[str, str]:
        """The environment of a service container."""
        return {"QUORUM_KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "QUORUM_HTTP_HOST": "127.0.0.1",
                "QUORUM_HTTP_PORT": str(port), "QUORUM_TOPIC_PREFIX": self.prefix, "QUORUM_LOG_LEVEL": "WARNING",
                **FAST_CODEC}

    @cached_property
    def admin(self) -> AdminClient:
        """The admin client of the broker (one for the run: a fresh client lists no groups until it
        has learned the brokers)."""
        return AdminClient({"bootstrap.servers": self.bootstrap})


def group_listed(ctx: Context, stem: str) -> bool:
    """Whether the broker lists a consumer group named ``<prefix><stem>...``."""
    groups = ctx.admin.list_consumer_groups(request_timeout=5).result()
    return any(g.group_id.startswith(ctx.prefix + stem) for g in groups.valid)


def records_on(ctx: Context, topic: str) -> int:
    """How many records ``<prefix><topic>`` holds (sum of the partitions' high watermarks)."""
    consumer = Consumer({"bootstrap.servers": ctx.bootstrap, "group.id": f"{ctx.prefix}smoke-probe"})
    try:
        meta = consumer.list_topics(ctx.prefix + topic, timeout=5).topics[ctx.prefix + topic]
        return sum(consumer.get_watermark_offsets(TopicPartition(ctx.prefix + topic, p), timeout=5)[1]
                   for p in meta.partitions)
    finally:
        consumer.close()


def _serve_and_stop(ctx: Context, service: str, result: Result, env: dict[str, str], joined: Callable[[], bool],
                    args: tuple[str, ...] = (), volumes: tuple[str, ...] = (), health_path: str = "/healthz") -> None:
    """Start a long-running container, time its health and joining, then SIGTERM it (exit 0 wanted)."""
    port = int(env["QUORUM_HTTP_PORT"])
    started = time.monotonic()
    cid = ctx.docker.start(f"quorum-imgtest-{service}-{os.getpid()}", ctx.image(service), env, args, volumes)
    try:
        alive = lambda: ctx.docker.running(cid)  # noqa: E731
        wait_until(health_path, lambda: http_status(f"http://127.0.0.1:{port}{health_path}") == 200,
                   STARTUP_TIMEOUT_S, alive)
        result.up_s = time.monotonic() - started
        wait_until("joining the broker", joined, STARTUP_TIMEOUT_S, alive)
        result.joined_s = time.monotonic() - started
        code = ctx.docker.stop(cid)
        if code != 0:
            raise CheckFailed(f"exit code {code} after SIGTERM")
    except CheckFailed as exc:
        raise CheckFailed(f"{exc}\n--- last log lines of {service} ---\n{ctx.docker.logs(cid)}") from None


def check_consumer(ctx: Context, service: str, result: Result) -> None:
    """A Kafka consumer service: healthy, ready (partitions assigned) and its group listed."""
    env = ctx.env(free_port())
    ready = f"http://127.0.0.1:{env['QUORUM_HTTP_PORT']}/readyz"
    stem = "admin-view-" if service == "admin" else service
    _serve_and_stop(ctx, service, result, env, lambda: http_status(ready) == 200 and group_listed(ctx, stem))


def check_ingest(ctx: Context, service: str, result: Result) -> None:
    """The ingest source, paced at 5 trading days a second: healthy and its bars on the broker."""
    env = {**ctx.env(free_port()), "QUORUM_REPLAY_SPEED": str(5 * 86_400)}
    _serve_and_stop(ctx, service, result, env, lambda: records_on(ctx, "md.bars") > 0)


def check_desk(ctx: Context, service: str, result: Result) -> None:
    """The desk image: a short embedded run (no broker) must exit 0 and write its report."""
    with tempfile.TemporaryDirectory(prefix="quorum-imgtest-") as tmp:
        os.chmod(tmp, 0o777)  # the image runs as uid 10001
        started = time.monotonic()
        cid = ctx.docker.start(f"quorum-imgtest-{service}-{os.getpid()}", ctx.image(service), FAST_CODEC,
                               DESK_ARGS, (f"{tmp}:/app/reports",))
        code = ctx.docker.wait(cid, timeout_s=300)
        result.joined_s = time.monotonic() - started
        if code != 0 or not (Path(tmp) / "imgtest" / "index.html").is_file():
            raise CheckFailed(f"embedded run: exit code {code}, report written: "
                              f"{(Path(tmp) / 'imgtest' / 'index.html').is_file()}\n{ctx.docker.logs(cid)}")


def check_sidecar(ctx: Context, service: str, result: Result) -> None:
    """The C++ risk sidecar: ``/metrics`` on its port and a GET_STATE answer over its Unix socket."""
    from quorum_sidecar.client import SidecarClient, SidecarError

    with tempfile.TemporaryDirectory(prefix="quorum-imgtest-") as tmp:
        os.chmod(tmp, 0o777)

        def answers() -> bool:
            sock = Path(tmp) / "risk.sock"
            if not sock.exists():
                return False
            client = SidecarClient(str(sock), deadline_ms=500)
            try:
                return client.state().mode == "ACTIVE"
            except SidecarError:
                return False
            finally:
                client.close()

        port = free_port()
        args = ("--config", "/etc/quorum-risk/sidecar.conf", "--socket", "/run/quorum-risk/risk.sock",
                "--metrics-port", str(port))
        _serve_and_stop(ctx, service, result, {"QUORUM_HTTP_PORT": str(port)}, answers, args,
                        (f"{tmp}:/run/quorum-risk",), health_path="/metrics")


CHECKS: dict[str, Callable[[Context, str, Result], None]] = {
    "ingest": check_ingest, "desk": check_desk, "risk-sidecar": check_sidecar}


def check(ctx: Context, service: str) -> Result:
    """Run the check of one image; never raises."""
    result = Result(service)
    try:
        user = ctx.docker.image_user(ctx.image(service))
        if user in ("", "0", "root") or user.startswith(("0:", "root:")):
            raise CheckFailed(f"runs as root (USER {user!r})")
        CHECKS.get(service, check_consumer)(ctx, service, result)
    except CheckFailed as exc:
        result.error = str(exc)
    except Exception as exc:  # a broken check must still end in a row of the table
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        ctx.docker.remove_all()
    return result


def read_builds(path: Path | None) -> dict[str, tuple[float, str]]:
    """``service -> (build seconds, status)`` from build-all.sh's tab-separated file."""
    if path is None or not path.exists():
        return {}
    rows = (line.split("\t") for line in path.read_text().splitlines() if line.strip())
    return {r[0]: (float(r[1]), r[2]) for r in rows}


def table(ctx: Context, results: list[Result], builds: dict[str, tuple[float, str]]) -> str:
    """The timing table: build seconds, image size, seconds to healthy and to joined, verdict."""
    fmt = "{:<14} {:>8} {:>9} {:>9} {:>9}  {}"
    lines = [fmt.format("image", "build s", "size MB", "health s", "joined s", "result")]
    seconds = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    for r in results:
        try:
            size = f"{ctx.docker.image_size_mb(ctx.image(r.service)):.0f}"
        except CheckFailed:
            size = "-"
        build = builds.get(r.service)
        lines.append(fmt.format(r.service, seconds(build[0] if build else None), size,
                                seconds(r.up_s), seconds(r.joined_s), "FAIL" if r.error else "ok"))
    total = sum(b[0] for b in builds.values())
    lines.append(f"total build {total:.1f} s over {len(builds)} images")
    lines.append("health s: docker run -> /healthz 200 (sidecar: /metrics); joined s: docker run -> /readyz 200 and "
                 "consumer group listed (ingest: bars on md.bars; desk: embedded run done with its report; "
                 "sidecar: GET_STATE answered on its socket); every container then stops on SIGTERM with exit 0")
    return "\n".join(lines)


def create_topics(ctx: Context, timeout_s: float = 60.0) -> None:
    """Create the run's topics and wait until every partition has a leader.

    Services restore state from their topics at start and may not race the topics' creation.
    """
    ensure_topics({"bootstrap.servers": ctx.bootstrap}, default_catalog(), ctx.prefix)
    admin = ctx.admin

    def leaders() -> bool:
        topics = admin.list_topics(timeout=10).topics
        mine = [t for name, t in topics.items() if name.startswith(ctx.prefix)]
        return bool(mine) and all(t.error is None and all(p.leader >= 0 for p in t.partitions.values())
                                  for t in mine)

    wait_until("topic leaders", leaders, timeout_s, alive=lambda: True)


def cleanup_broker(ctx: Context) -> None:
    """Delete the run's topics and consumer groups."""
    admin = ctx.admin
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(ctx.prefix)]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()
    groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result().valid
              if g.group_id.startswith(ctx.prefix)]
    if groups:
        for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
            future.exception()  # a group still settling is not worth failing the run


def main(argv: list[str] | None = None) -> int:
    """Check every image given; print the table; 1 when any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("services", nargs="+", help="service names (images quorum-<service>:<tag>)")
    parser.add_argument("--docker", default="docker", help="docker client (BuildKit-capable)")
    parser.add_argument("--tag", required=True, help="image tag")
    parser.add_argument("--builds", type=Path, help="tab-separated build times written by build-all.sh")
    parser.add_argument("--bootstrap", default=os.environ.get("QUORUM_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    args = parser.parse_args(argv)
    ctx = Context(Docker(args.docker), args.tag, args.bootstrap, f"imgtest.{os.getpid()}.")
    create_topics(ctx)
    results = []
    try:
        for service in args.services:
            result = check(ctx, service)
            print(f"[smoke] {service}: {'FAIL ' + result.error if result.error else 'ok'}", file=sys.stderr, flush=True)
            results.append(result)
    finally:
        cleanup_broker(ctx)
    print(table(ctx, results, read_builds(args.builds)))
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
