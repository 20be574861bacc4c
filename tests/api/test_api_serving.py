"""`loyalty-bot api` and `loyalty-bot api-client`: managing tills from the command line,
the settings `api` refuses (each naming the setting), and the real server: uvicorn with
several workers on PostgreSQL answering /healthz, OpenAPI and a till's call; the served
app's /healthz, /openapi.json and /docs; the migration matching the model."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel
from typer.testing import CliRunner, Result

from bot.cli import app
from core.tills import md5hex
from tests.api.api_harness import STRONG_KEY, api
from tests.core.points_harness import requires_postgres
from tests.support.databases import own_database
from tests.support.members import member_csv

PASSWORD = "password: "


class Cli:
    def __init__(self, url: str) -> None:
        self.runner = CliRunner()
        self.env = {"DATABASE_URL": url, "SECRET_KEY": STRONG_KEY}

    def __call__(self, *args: str, exit_code: int = 0, **settings: str) -> Result:
        result = self.runner.invoke(app, list(args), env={**self.env, **settings})
        assert result.exit_code == exit_code, (args, result.output, result.exception)
        return result


def password_of(result: Result) -> str:
    lines = [line for line in result.stdout.splitlines() if line.startswith(PASSWORD)]
    assert len(lines) == 1, result.stdout
    return lines[0][len(PASSWORD):]


def test_api_client_add_list_disable_rotate(db_url: str) -> None:
    cli = Cli(db_url)
    assert "no tills yet" in cli("api-client", "list").stdout
    first = password_of(cli("api-client", "add", "shop-1"))
    skipper = cli("api-client", "add", "web-shop", "--allow-skip-validation")
    assert "(may skip validation)" in skipper.stdout and password_of(skipper)
    assert len(first) >= 20
    listed = cli("api-client", "list").stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["shop-1", "enabled"],
                                                      ["web-shop", "enabled"]]
    assert "may skip validation" in listed[1] and "may skip" not in listed[0]
    assert "already" in cli("api-client", "add", "shop-1", exit_code=2).stderr
    assert "name" in cli("api-client", "add", "bad:name", exit_code=2).stderr
    rotated = password_of(cli("api-client", "rotate", "shop-1"))
    assert rotated != first
    assert "disabled" in cli("api-client", "disable", "shop-1").stdout
    assert "shop-1  disabled" in cli("api-client", "list").stdout
    assert "no till named" in cli("api-client", "rotate", "nobody", exit_code=2).stderr


def test_the_password_printed_is_the_one_the_api_accepts(sqlite_url: str) -> None:
    password = password_of(Cli(sqlite_url)("api-client", "add", "shop-1"))
    with api(sqlite_url) as a:
        member = a.member()
        answer = a.client("shop-1", password).get(
            "/v1.1/points/isredeemable", params={"mobile": member.mobile, "points": 500})
        assert answer.status_code == 200


@pytest.mark.parametrize(("settings", "says"), [
    ({"API_WORKERS": "2"}, "API_WORKERS above 1 needs DATABASE_URL on PostgreSQL"),
    ({"API_PORT": "70000"}, "API_PORT must be a port number"),
    ({"API_MAX_BODY_BYTES": "10"}, "API_MAX_BODY_BYTES must be between"),
    ({"API_BODY_TIMEOUT_SECONDS": "0"}, "API_BODY_TIMEOUT_SECONDS must be more than 0"),
    ({"API_TRUSTED_PROXIES": "proxy"}, "API_TRUSTED_PROXIES"),
    ({"API_PORT": "eighty"}, "API_PORT"),
    ({"OTP_CHANNEL": "chat"}, "OTP_CHANNEL chat cannot be used by the API"),
    ({"SECRET_KEY": "short"}, "SECRET_KEY is 5 characters long"),
])
def test_api_refuses_settings_that_cannot_work(sqlite_url: str, settings: dict[str, str],
                                               says: str) -> None:
    channels = {"OTP_CHANNEL": "email", "SMTP_HOST": "127.0.0.1",
                "SMTP_FROM": "points@example.com"}
    result = Cli(sqlite_url)("api", exit_code=1, **{**channels, **settings})
    assert says in result.stderr


def test_healthz_openapi_and_docs(sqlite_url: str) -> None:
    with api(sqlite_url) as a:
        http = a.client()
        assert http.get("/healthz").json() == {"status": "ok"}
        schema = http.get("/openapi.json").json()
        assert {"/v1.1/points/isredeemable", "/v1.1/points/validationcode",
                "/v1.1/points/redeem", "/v1.1/points/revert",
                "/v2/points/reverse"} <= set(schema["paths"])
        assert "HTTPBasic" in schema["components"]["securitySchemes"]
        operations = [op for path in schema["paths"].values() for op in path.values()]
        assert all("422" not in op["responses"] and "400" in op["responses"]
                   for op in operations)  # 422 never travels: 400 in the envelope
        assert http.get("/docs").status_code == 200
        missing = http.get("/v1.1/points/nothing")
        assert missing.status_code == 404
        assert missing.json()["response"]["status"]["code"] == 404


def test_the_migration_makes_the_till_table_as_the_model_says(sqlite_url: str) -> None:
    with api(sqlite_url) as a, a.service.db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, SQLModel.metadata)
                if "till" in str(d)]
        assert diff == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.postgres
@pytest.mark.slow
@requires_postgres
def test_loyalty_bot_api_serves_with_several_workers_on_postgres(tmp_path: Path) -> None:
    with own_database("postgres", tmp_path) as url:
        cli = Cli(url)
        members = tmp_path / "members.csv"
        members.write_bytes(member_csv([{"mobile": "+919800000001", "name": "Asha",
                                         "type": "loyalty", "points": 5000}]))
        cli("import", str(members))
        password = password_of(cli("api-client", "add", "shop-1"))
        port = _free_port()
        env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": STRONG_KEY,
               "API_PORT": str(port), "API_WORKERS": "2", "OTP_CHANNEL": "email",
               "SMTP_HOST": "127.0.0.1", "SMTP_FROM": "points@example.com"}
        server = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "api"], env=env, cwd=tmp_path,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 90
            with httpx.Client(base_url=base, timeout=10) as http:
                while True:
                    assert server.poll() is None, server.stdout.read() if server.stdout else ""
                    try:
                        if http.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "the API did not start"
                    time.sleep(0.2)
                answers = [http.get("/v1.1/points/isredeemable",
                                    params={"mobile": "+919800000001", "points": 500},
                                    auth=("shop-1", md5hex(password))).json()
                           for _ in range(6)]
                assert {a["response"]["points"]["redeemable"]["item_status"]["code"]
                        for a in answers} == {800}
                assert "/v1.1/points/redeem" in http.get("/openapi.json").json()["paths"]
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                output, _ = server.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                output, _ = server.communicate()
        assert "serving the points API" in output
        assert output.count("Application startup complete") == 2, output


def test_a_body_that_does_not_arrive_in_time_is_408(sqlite_url: str) -> None:
    with api(sqlite_url, api_body_timeout_seconds=1) as a:
        host, port = a.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(b"POST /v1.1/points/redeem HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = sock.recv(4096)  # the server answers, then closes
                if not chunk:
                    break
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 408")
        assert b'"code":408' in answer


def test_every_api_setting_is_in_env_example_and_the_readme() -> None:
    from api.settings import ApiSettings
    from core.settings import Settings

    root = Path(__file__).resolve().parents[2]
    example = (root / ".env.example").read_text()
    readme = (root / "README.md").read_text()
    new = {name.upper() for name in set(ApiSettings.model_fields) - set(
        Settings.model_fields)} | {
        name.upper() for name in Settings.model_fields if name.startswith("till_")}
    assert new
    for name in new:
        assert f"\n{name}=" in example, name
        assert f"`{name}`" in readme, name


def test_connections_beyond_api_max_connections_get_503(sqlite_url: str) -> None:
    # uvicorn counts the connection asking too: 2 lets one connection be served at a time.
    with api(sqlite_url, api_max_connections=2) as a:
        host, port = a.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=30) as held:
            held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held.recv(4096).startswith(b"HTTP/1.1 200")  # kept alive: one held
            assert a.client().get("/healthz").status_code == 503
        deadline = time.monotonic() + 30
        while a.client().get("/healthz").status_code != 200:  # the held one is closed
            assert time.monotonic() < deadline
            time.sleep(0.05)


def _nodelay_of_accepted(sock: socket.socket) -> int:
    """TCP_NODELAY on the server's side of one connection accepted from `sock` by an
    asyncio server (as uvicorn serves: `loop.create_server(sock=...)`)."""
    import asyncio

    async def accept_one() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(accepted, 10)
            writer.close()
        return value
    return asyncio.run(accept_one())


def test_the_served_socket_sets_tcp_nodelay_on_every_connection() -> None:
    from bot.api_server import listening_socket

    ours = listening_socket("127.0.0.1", 0)
    assert _nodelay_of_accepted(ours) != 0
    # What uvicorn's own bind_socket makes (with API_WORKERS > 1): no IPPROTO_TCP, so
    # asyncio leaves Nagle on and a kept-alive answer waits for a delayed ACK.
    plain = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    plain.bind(("127.0.0.1", 0))
    assert _nodelay_of_accepted(plain) == 0
