"""A local single-node Apache Kafka (KRaft) broker for development, tests and ``make up``.

``python -m quorum_common.kafka_local up`` fetches the pinned broker release's jars from Maven
Central with Maven (cached under ``.cache/kafka/``), formats a KRaft data folder under ``.kafka/``
(both git-ignored), starts the broker on localhost and creates every topic of the catalog.
``down`` stops it (``--purge`` also deletes its data), ``status`` tells whether it answers.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from quorum_common.paths import REPO_ROOT

KAFKA_VERSION = "3.9.1"
SCALA_VERSION = "2.13"
SLF4J_BINDING = "org.slf4j:slf4j-reload4j:1.7.36"

CACHE_DIR = Path(os.environ.get("QUORUM_KAFKA_CACHE", REPO_ROOT / ".cache" / "kafka"))
STATE_DIR = Path(os.environ.get("QUORUM_KAFKA_DIR", REPO_ROOT / ".kafka"))
HOST = "127.0.0.1"
PORT = int(os.environ.get("QUORUM_KAFKA_PORT", "19092"))
CONTROLLER_PORT = int(os.environ.get("QUORUM_KAFKA_CONTROLLER_PORT", str(PORT + 1)))
BOOTSTRAP = f"{HOST}:{PORT}"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>quorum.local</groupId><artifactId>kafka-broker</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_{scala}</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>{slf4j_g}</groupId><artifactId>{slf4j_a}</artifactId><version>{slf4j_v}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J = """log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
"""


class KafkaLocalError(RuntimeError):
    """The local broker could not be fetched, formatted or started; the message says why."""


def _say(msg: str) -> None:
    print(f"[kafka-local] {msg}", file=sys.stderr, flush=True)


def lib_dir() -> Path:
    """Folder with the pinned release's jars."""
    return CACHE_DIR / KAFKA_VERSION / "lib"


def fetch_jars() -> Path:
    """Download the broker's jars with Maven once; return their folder."""
    libs = lib_dir()
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise KafkaLocalError("Maven (mvn) is needed to fetch the Kafka broker jars; install it first")
    work = CACHE_DIR / KAFKA_VERSION
    work.mkdir(parents=True, exist_ok=True)
    g, a, v = SLF4J_BINDING.split(":")
    pom = _POM.format(scala=SCALA_VERSION, kafka=KAFKA_VERSION, slf4j_g=g, slf4j_a=a, slf4j_v=v)
    (work / "pom.xml").write_text(pom)
    _say(f"fetching Apache Kafka {KAFKA_VERSION} broker jars with Maven (once)")
    cmd = ["mvn", "-q", "-B", "-f", str(work / "pom.xml"), "dependency:copy-dependencies",
           f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KafkaLocalError(f"mvn failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    if not any(libs.glob(f"kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar")):
        raise KafkaLocalError(f"mvn finished but {libs} has no kafka_{SCALA_VERSION}-{KAFKA_VERSION}.jar")
    marker.touch()
    return libs


def _properties() -> str:
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{HOST}:{CONTROLLER_PORT}",
        f"listeners=PLAINTEXT://{HOST}:{PORT},CONTROLLER://{HOST}:{CONTROLLER_PORT}",
        f"advertised.listeners=PLAINTEXT://{HOST}:{PORT}",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={STATE_DIR / 'data'}",
        "num.partitions=1",
        "auto.create.topics.enable=false",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=10",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=10",
        "group.initial.rebalance.delay.ms=0",
        "transaction.abort.timed.out.transaction.cleanup.interval.ms=10000",
        # Deleted topics (every test and replay prefix) leave their files at once, not a minute later:
        # a broker that is stopped sooner would otherwise keep them until it next runs that long.
        "file.delete.delay.ms=1000",
        "",
    ])


DEFAULT_HEAP = "-Xms1g -Xmx1g"
DEFAULT_GC = "-XX:+UseZGC"
"""ZGC: its pauses stay under a millisecond. With G1 (Kafka's own scripts' choice) the broker paused 5-12 ms about
once a second during a pipeline replay, and a warmed broker's produce -> consume p99 at 10k msg/s was 5.5-7.1 ms
against 2.9-3.0 ms with ZGC (``bench/kafka_bench.latency``, 10 s runs, this 2-core machine)."""


def _java(libs: Path, *args: str) -> list[str]:
    heap = os.environ.get("QUORUM_KAFKA_HEAP", DEFAULT_HEAP).split()
    gc = os.environ.get("QUORUM_KAFKA_GC", DEFAULT_GC).split()
    return ["java", *heap, *gc, f"-Dlog4j.configuration=file:{STATE_DIR / 'log4j.properties'}",
            "-cp", f"{libs}/*", *args]


def cluster_id(random_bytes: Callable[[], bytes] = lambda: uuid.uuid4().bytes) -> str:
    """A new KRaft cluster id: 16 random bytes in URL-safe base64, as Kafka writes them, and like Kafka's own never
    starting with ``-`` (the storage tool would read such an id as an option and refuse to format: one start in 64
    failed so)."""
    while (found := base64.urlsafe_b64encode(random_bytes()).decode().rstrip("=")).startswith("-"):
        pass
    return found


def is_up(timeout_s: float = 1.0) -> bool:
    """Whether something accepts connections on the broker's port."""
    try:
        with socket.create_connection((HOST, PORT), timeout=timeout_s):
            return True
    except OSError:
        return False


def _pid() -> int | None:
    pid_file = STATE_DIR / "broker.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except OSError:
        return None
    return pid


def broker_pid() -> int | None:
    """The pid of the broker started by :func:`up`, while it runs."""
    return _pid()


def _wait_ready(proc_pid: int, timeout_s: float) -> None:
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    admin = None  # made once the port accepts connections: librdkafka logs every refused one as an error
    while time.monotonic() < deadline:
        if not _alive(proc_pid):
            log = (STATE_DIR / "broker.log").read_text()[-4000:]
            raise KafkaLocalError(f"the broker exited during start; end of {STATE_DIR / 'broker.log'}:\n{log}")
        if admin is None:
            if not is_up(timeout_s=0.5):
                time.sleep(0.3)
                continue
            admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
        try:
            md = admin.list_topics(timeout=2)
            if md.brokers:
                return
        except Exception:  # not up yet
            pass
        time.sleep(0.3)
    raise KafkaLocalError(f"the broker did not answer on {BOOTSTRAP} within {timeout_s}s")


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False


def up(create_topics: bool = True, timeout_s: float = 90.0) -> str:
    """Start the broker unless it already answers; create the catalog topics (with their local partitions:
    :meth:`~quorum_common.schemas.TopicCatalog.local`); return the bootstrap."""
    if is_up():
        _say(f"a broker already answers on {BOOTSTRAP}")
    else:
        libs = fetch_jars()
        if shutil.which("java") is None:
            raise KafkaLocalError("java (17 or later) is needed to run the Kafka broker")
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        props = STATE_DIR / "server.properties"
        props.write_text(_properties())
        (STATE_DIR / "log4j.properties").write_text(_LOG4J)
        if not (STATE_DIR / "data" / "meta.properties").exists():
            fmt = _java(libs, "kafka.tools.StorageTool", "format", "-t", cluster_id(), "-c", str(props))
            proc = subprocess.run(fmt, capture_output=True, text=True)
            if proc.returncode != 0:
                raise KafkaLocalError(f"formatting the KRaft log failed:\n{proc.stdout}\n{proc.stderr}")
        _say(f"starting Kafka {KAFKA_VERSION} on {BOOTSTRAP} (data in {STATE_DIR / 'data'})")
        with open(STATE_DIR / "broker.log", "ab") as out:
            proc = subprocess.Popen(_java(libs, "kafka.Kafka", str(props)), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        (STATE_DIR / "broker.pid").write_text(str(proc.pid))
        _wait_ready(proc.pid, timeout_s)
        _say("broker is up")
    if create_topics:
        from quorum_common.bus.kafka_admin import ensure_topics
        from quorum_common.schemas import default_catalog

        created = ensure_topics({"bootstrap.servers": BOOTSTRAP}, default_catalog().local(), align=True)
        _say(f"topics ready ({len(created)} created)")
    return BOOTSTRAP


def down(purge: bool = False, timeout_s: float = 30.0) -> None:
    """Stop the broker started by :func:`up` (by its pid file); with ``purge`` delete its data."""
    pid = _pid()
    if pid is None:
        _say("no broker started from this checkout is running")
    else:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid):
            _say("broker did not stop in time; killing it")
            os.kill(pid, signal.SIGKILL)
        _say("broker stopped")
    (STATE_DIR / "broker.pid").unlink(missing_ok=True)
    if purge and STATE_DIR.exists():
        shutil.rmtree(STATE_DIR)
        _say(f"deleted {STATE_DIR}")


def main(argv: list[str] | None = None) -> int:
    """Command line: ``up``, ``down [--purge]``, ``status``, ``fetch``."""
    parser = argparse.ArgumentParser(prog="kafka_local", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="fetch, format and start the broker; create the catalog topics")
    d = sub.add_parser("down", help="stop the broker")
    d.add_argument("--purge", action="store_true", help="also delete the broker's data")
    sub.add_parser("status", help="exit 0 when the broker answers")
    sub.add_parser("fetch", help="only download the broker jars")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "up":
            print(up())
        elif args.cmd == "down":
            down(purge=args.purge)
        elif args.cmd == "fetch":
            print(fetch_jars())
        else:
            ok = is_up()
            print(f"{BOOTSTRAP} {'up' if ok else 'down'}")
            return 0 if ok else 1
    except KafkaLocalError as exc:
        _say(f"error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
