"""Flash-sale benchmark: N buyers race for U units through the HTTP API.

    python bench/flash_sale.py --buyers 1000 --units 10 --processes 2

Creates a fresh PostgreSQL database (``showfloor_bench_<pid>`` on
127.0.0.1:5432), migrates and seeds it (a live show, one pinned product with U
units, a running flash sale unless ``--no-sale``), starts localstripe and P
Daphne processes on loopback (Redis for the room events and the sold-out
marker), then lets every buyer arrive at once: each is a guest with a CSRF
cookie who POSTs one order of one unit, carried by ``--concurrency`` keep-alive
HTTP/1.1 connections opened beforehand (a few lines of asyncio, lighter than
an HTTP library: the client shares the two cores with the servers). After the
race the winners pay, one after another, with the server-confirmed test card
(not part of the answer times).

Measures every buyer's answer time from the start (so waiting for a free
connection counts, as it would for a buyer), the order endpoint's own time
from its ``Server-Timing`` header (``app`` minus ``psp``, the time spent
waiting for the payment provider), how many sold-out answers came from the
guard before Django (``sold_out_early``), the CPU the Daphne processes and the
client spent per answer (robust on a shared machine), and checks the database
afterwards: orders, paid orders, stock. ``--dump`` writes every buyer's record.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.support import free_port, wait_port  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
# Every order is posted to this address (the brand ships to Germany).
ADDRESS = {
    "name": "Bench Buyer",
    "line1": "Torstraße 1",
    "postal_code": "10119",
    "city": "Berlin",
    "country": "DE",
}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def forget_redis_keys(url: str, prefix: str) -> None:
    """Remove the run's keys (room logs, sold-out markers) from Redis."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


SEED = """
import json, sys
from datetime import timedelta
from django.utils import timezone
from shows import services
from shows.services import room
from checkout import services as checkout
units, sale = int(sys.argv[1]), sys.argv[2] == "1"
brand = services.brand_create(name="Bench", slug="bench")
host = services.user_signup(email="host@bench.test", password="bench-password-1",
                            display_name="Host")
services.membership_set(brand=brand, user=host, role="host")
product = services.product_create(brand=brand, name="Limited sneaker")
variant = services.variant_create(product=product, sku="BENCH-1", name="42",
                                  price_minor=12900, currency="EUR",
                                  stock_available=units)
warm = services.product_create(brand=brand, name="Socks")
warm_variant = services.variant_create(product=warm, sku="BENCH-W", name="M",
                                       price_minor=900, currency="EUR",
                                       stock_available=100)
show = services.show_create(brand=brand, slug="drop", title="Drop",
                            scheduled_at=timezone.now() + timedelta(minutes=1),
                            products=[product, warm])
services.show_start(show=show)
from checkout.services import delivery
delivery.shipping_zone_set(brand=brand, name="EU", countries=["DE", "FR", "NL"],
                           rate_minor=490, currency="EUR", free_from_minor=10000)
delivery.tax_rate_set(brand=brand, country="DE", rate_bp=1900)
room.product_pin(show=show, actor=host, product_id=warm.pk)
room.product_pin(show=show, actor=host, product_id=product.pk)
if sale:
    checkout.sale_start(show=show, user=host, product_id=product.pk, price_minor=9900,
                        duration_seconds=600, per_buyer_limit=1)
print(json.dumps({"variant": variant.pk, "warm_up": warm_variant.pk,
                  "slug": show.slug}))
"""

CHECK = """
import json
from checkout.models import Order
from shows.models import Variant
v = Variant.objects.get(sku="BENCH-1")
orders = Order.objects.filter(lines__variant=v)
print(json.dumps({
    "orders": orders.count(),
    "paid": orders.filter(status="paid").count(),
    "with_address": orders.filter(shipping_address__isnull=False).count(),
    "stock": v.stock_available,
}))
"""


def manage(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-3000:])
    return result.stdout


class Connection:
    """One keep-alive HTTP/1.1 connection: the load generator's whole client.
    aiohttp costs more CPU per request than the guard's sold-out answer, and
    the client shares the two cores with the servers."""

    def __init__(self, base: str) -> None:
        self.host, port = base.removeprefix("http://").split(":")
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: dict, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(
                self.host, self.port
            )
        data = json.dumps(body).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(
            (
                f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                f"{head}\r\n"
            ).encode()
            + data
        )
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        answer: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                name = name.strip().lower()
                value = value.strip()
                answer[name] = f"{answer[name]}, {value}" if name in answer else value
        if answer.get("transfer-encoding", "").lower() == "chunked":
            content = b""
            while size := int((await self.reader.readline()).split(b";")[0], 16):
                content += await self.reader.readexactly(size + 2)
                content = content[:-2]
            await self.reader.readline()
        else:
            content = await self.reader.readexactly(
                int(answer.get("content-length", 0))
            )
        if answer.get("connection", "").lower() == "close":
            self.close()
        return status, answer, content

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def buy_and_pay(
    connection: Connection, slug: str, variant: int, csrf: str, email: str
) -> str:
    """One guest's order and payment; returns what went wrong, if anything."""
    status, headers, content = await connection.request(
        "POST",
        f"/api/shows/{slug}/orders",
        {"variant_id": variant, "quantity": 1, "email": email, "address": ADDRESS},
        {
            "Idempotency-Key": uuid.uuid4().hex,
            "X-CSRFToken": csrf,
            "Cookie": f"csrftoken={csrf}",
        },
    )
    if status != 201:
        return f"order {status} {content[:120]!r}"
    session = re.search(r"sessionid=([^;]+)", headers.get("set-cookie", ""))
    return await pay(connection, json.loads(content)["id"], session, csrf)


async def pay(
    connection: Connection, order: str, session: re.Match | None, csrf: str
) -> str:
    cookie = f"csrftoken={csrf}; sessionid={session.group(1) if session else ''}"
    status, _, content = await connection.request(
        "POST",
        f"/api/orders/{order}/pay",
        {"method": "test"},
        {"X-CSRFToken": csrf, "Cookie": cookie},
    )
    try:
        data = json.loads(content)
    except ValueError:
        data = {"code": content[:200].decode("latin-1")}
    if status == 200 and data.get("status") == "paid":
        return ""
    return f"pay {status} {data.get('code')}"


async def race(
    bases: list[str],
    slug: str,
    variant: int,
    warm_up: int,
    buyers: int,
    concurrency: int,
    servers: list[int],
    *,
    new_connections: bool = False,
) -> dict:
    """Every buyer arrives at once; ``concurrency`` connections (spread over
    the servers) carry their orders. A buyer's time runs from the start, so it
    includes waiting for a free connection, as a real buyer would wait. With
    ``new_connections`` every buyer opens a connection of their own at the
    start instead: the servers' listen backlog meets the whole crowd."""
    csrf = secrets.token_hex(16)
    timing = re.compile(r"(\w+);dur=([\d.]+)")
    results: list[dict] = []
    waiting = iter(range(buyers))
    for base in bases:
        # Each server sells and takes payment for one other product first, as
        # a server that has been up during the show has: Python loads some
        # modules and data (Stripe's, Babel's) only on first use.
        warm = Connection(base)
        problem = await buy_and_pay(warm, slug, warm_up, csrf, "w@bench.test")
        warm.close()
        if problem:
            raise RuntimeError(f"warm-up order failed: {problem}")
    if new_connections:
        concurrency = buyers
    connections = [Connection(bases[c % len(bases)]) for c in range(concurrency)]
    if not new_connections:
        for connection in connections:
            # Open them before the start, as browsers already on the page would.
            await connection.request("GET", "/healthz", {}, {})

    async def carry(connection: Connection, t0: float) -> None:
        for i in waiting:
            record: dict = {"i": i, "base": connection}
            sent = time.perf_counter()
            try:
                status, headers, content = await connection.request(
                    "POST",
                    f"/api/shows/{slug}/orders",
                    {
                        "variant_id": variant,
                        "quantity": 1,
                        "email": f"b{i}@bench.test",
                        "address": ADDRESS,
                    },
                    {
                        "Idempotency-Key": uuid.uuid4().hex,
                        "X-CSRFToken": csrf,
                        "Cookie": f"csrftoken={csrf}",
                    },
                )
                try:
                    data = json.loads(content)
                except ValueError:
                    data = {"code": f"not JSON: {content[:120]!r}"}
                record["status"] = status
                record["code"] = data.get("code")
                record["order"] = data.get("id")
                record["session"] = re.search(
                    r"sessionid=([^;]+)", headers.get("set-cookie", "")
                )
                spans = dict(timing.findall(headers.get("server-timing", "")))
                record["app_ms"] = float(spans.get("app", 0))
                record["psp_ms"] = float(spans.get("psp", 0))
                record["early"] = "marker" in headers.get("server-timing", "")
                record["fallback"] = "fallback" in headers.get("server-timing", "")
            except Exception as exc:
                connection.close()
                record["status"] = 0
                record["error"] = f"{type(exc).__name__}: {exc}"
                # Refused or reset by the kernel (a full listen backlog), or
                # closed by the server before it answered.
                record["reset"] = isinstance(
                    exc,
                    ConnectionError | asyncio.IncompleteReadError | EOFError,
                )
            now = time.perf_counter()
            record["ms"] = (now - t0) * 1000
            record["wire_ms"] = (now - sent) * 1000
            results.append(record)

    server_cpu = sum(cpu_seconds(pid) for pid in servers)
    client_cpu = time.process_time()
    t0 = time.perf_counter()
    await asyncio.gather(*(carry(c, t0) for c in connections))
    race_s = time.perf_counter() - t0
    server_cpu = sum(cpu_seconds(pid) for pid in servers) - server_cpu
    client_cpu = time.process_time() - client_cpu

    paid = 0
    pay_errors: list[str] = []
    for record in results:
        if record["status"] != 201:
            continue
        problem = await pay(record["base"], record["order"], record["session"], csrf)
        if problem:
            pay_errors.append(problem)
        else:
            paid += 1
    total_s = time.perf_counter() - t0
    for connection in connections:
        connection.close()
    return {
        "results": results,
        "race_s": race_s,
        "total_s": total_s,
        "paid": paid,
        "pay_errors": pay_errors,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=1000)
    parser.add_argument("--units", type=int, default=10)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument(
        "--concurrency", type=int, default=40, help="open HTTP connections in all"
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=1024,
        help="Daphne's listen backlog (Twisted's default is 50)",
    )
    parser.add_argument(
        "--new-connections",
        action="store_true",
        help="every buyer opens a connection of their own at the start",
    )
    parser.add_argument("--no-sale", action="store_true", help="no flash sale running")
    parser.add_argument("--dump", help="write every buyer's record here (JSON lines)")
    args = parser.parse_args()

    load = os.getloadavg()[0]
    db = f"showfloor_bench_{os.getpid()}"
    secret = "whsec_bench_" + secrets.token_hex(8)
    ports = [free_port() for _ in range(args.processes)]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": f"{PG}/{db}",
        "DATABASE_POOL": "1",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "SHOWFLOOR_REDIS_PREFIX": f"bench{os.getpid()}",
        "SHOWFLOOR_SERVE_MEDIA": "0",
        "STRIPE_WEBHOOK_SECRET": secret,
        "STRIPE_SECRET_KEY": "sk_test_bench",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOG_LEVEL": "WARNING",
        # Every buyer comes from 127.0.0.1 here: no per-address reservation limit.
        "SHOWFLOOR_RESERVATIONS_PER_MINUTE": "0",
    }
    sys.path.insert(0, str(ROOT))
    create_database(db)
    procs: list[subprocess.Popen] = []
    try:
        from checkout.devstripe import start_for_demo

        stripe_proc, stripe_base = start_for_demo(
            f"http://127.0.0.1:{ports[0]}/stripe/webhook/", secret
        )
        procs.append(stripe_proc)
        env["STRIPE_API_BASE"] = stripe_base
        manage(env, "migrate", "--noinput")
        seeded = json.loads(
            manage(
                env,
                "shell",
                "-c",
                SEED.replace("sys.argv[1]", str(args.units)).replace(
                    'sys.argv[2] == "1"', "False" if args.no_sale else "True"
                ),
            )
            .strip()
            .splitlines()[-1]
        )
        for port in ports:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "daphne",
                        "-e",
                        f"tcp:port={port}:interface=127.0.0.1:backlog={args.backlog}",
                        "config.asgi:application",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in ports:
            wait_port(port)
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        outcome = asyncio.run(
            race(
                bases,
                seeded["slug"],
                seeded["variant"],
                seeded["warm_up"],
                args.buyers,
                args.concurrency,
                [proc.pid for proc in procs[1:]],
                new_connections=args.new_connections,
            )
        )
        checked = json.loads(manage(env, "shell", "-c", CHECK).strip().splitlines()[-1])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        drop_database(db)
        forget_redis_keys(env["REDIS_URL"], env["SHOWFLOOR_REDIS_PREFIX"])

    results = outcome["results"]
    if args.dump:
        with open(args.dump, "w") as out:
            for r in results:
                skip = ("base", "session")
                out.write(json.dumps({k: v for k, v in r.items() if k not in skip}))
                out.write("\n")
    created = [r for r in results if r["status"] == 201]
    sold_out = [
        r for r in results if r["status"] == 409 and r.get("code") == "sold_out"
    ]
    errors = [r for r in results if r not in created and r not in sold_out]
    latencies = [r["ms"] for r in results]
    own = [max(0.0, r["app_ms"] - r["psp_ms"]) for r in results if r["status"]]
    summary = {
        "buyers": args.buyers,
        "units": args.units,
        "processes": args.processes,
        "sale": not args.no_sale,
        "orders_created": len(created),
        "orders_paid": outcome["paid"],
        "orders_in_db": checked["orders"],
        "paid_in_db": checked["paid"],
        "orders_with_address": checked["with_address"],
        "stock_left": checked["stock"],
        "oversold": max(0, checked["paid"] - args.units) + max(0, -checked["stock"]),
        "sold_out": len(sold_out),
        "sold_out_early": sum(1 for r in sold_out if r.get("early")),
        "new_connections": args.new_connections,
        "backlog": args.backlog,
        # Buyers whose connection was refused or reset before an answer.
        "connection_resets": sum(1 for r in results if r.get("reset")),
        # Answers the guard let through without Redis's answer.
        "guard_fallbacks": sum(1 for r in results if r.get("fallback")),
        "errors": len(errors) + len(outcome["pay_errors"]),
        "error_samples": [
            r.get("error") or f"{r['status']} {r.get('code')}" for r in errors[:5]
        ]
        + outcome["pay_errors"][:5],
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "max_ms": round(max(latencies or [0]), 1),
        "endpoint_p50_ms": round(percentile(own, 0.50), 1),
        "endpoint_p99_ms": round(percentile(own, 0.99), 1),
        "psp_mean_ms_winners": round(
            statistics.mean([r["psp_ms"] for r in created]) if created else 0.0, 1
        ),
        "race_s": round(outcome["race_s"], 3),
        "orders_per_s": round(outcome["paid"] / outcome["total_s"], 1)
        if outcome["total_s"]
        else 0.0,
        "answers_per_s": round(len(results) / outcome["race_s"], 1),
        # CPU per answer during the race: robust to other load on the machine.
        "server_cpu_ms_per_answer": round(
            outcome["server_cpu_s"] * 1000 / max(1, len(results)), 2
        ),
        "client_cpu_ms_per_answer": round(
            outcome["client_cpu_s"] * 1000 / max(1, len(results)), 2
        ),
        "load_1min_at_start": round(load, 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
