"""The files under deploy/ that docs/deploy.md tells an operator to install: the systemd
units, the nginx and Caddy configurations (each checked by its own tool when this machine
has it, skipped otherwise), and the alert rules, whose metrics must be ones the bot
serves; the README must list every metric."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot import metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists()
                                  else None)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_the_systemd_units_verify(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    units = ["loyalty-bot@.service", "loyalty-bot.target", "loyalty-backup.service",
             "loyalty-backup.timer"]
    for unit in units:
        shutil.copy(DEPLOY / unit, tmp_path / unit)
    # An instance, with a command that exists here (the real one is in /opt/loyalty-bot).
    worker = (DEPLOY / "loyalty-bot@.service").read_text()
    assert "ExecStart=/opt/loyalty-bot/.venv/bin/loyalty-bot run" in worker
    (tmp_path / "loyalty-bot@8081.service").write_text(
        re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", worker))
    done = subprocess.run([analyze, "verify", "--man=no", "loyalty-bot@8081.service",
                           *units[1:]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    for needed in ("Restart=on-failure", "EnvironmentFile=/etc/loyalty-bot/loyalty-bot.env",
                   "Environment=WEBHOOK_PORT=%i", "Environment=WEBHOOK_LISTEN=127.0.0.1"):
        assert needed in worker


def test_the_api_unit_verifies(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    unit = (DEPLOY / "loyalty-api.service").read_text()
    assert "ExecStart=/opt/loyalty-bot/.venv/bin/loyalty-bot api" in unit
    (tmp_path / "loyalty-api.service").write_text(
        re.sub(r"(?m)^ExecStart=.*$", "ExecStart=/bin/true", unit))
    done = subprocess.run([analyze, "verify", "--man=no", "loyalty-api.service"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    for needed in ("Restart=on-failure", "EnvironmentFile=/etc/loyalty-bot/loyalty-bot.env",
                   "Environment=API_LISTEN=127.0.0.1"):
        assert needed in unit


def test_the_nginx_configuration_is_valid(tmp_path: Path) -> None:
    nginx = tool("nginx")
    openssl = tool("openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    "/CN=bot.example.com", "-days", "1", "-keyout", str(tmp_path / "privkey.pem"),
                    "-out", str(tmp_path / "fullchain.pem")], capture_output=True, timeout=60,
                   check=True)
    site = (DEPLOY / "nginx" / "loyalty-bot.conf").read_text().replace(
        "/etc/letsencrypt/live/bot.example.com", str(tmp_path))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  include {tmp_path}/site.conf;\n}}\n")
    done = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p",
                           str(tmp_path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "location = /telegram/hook" in site and "return 404" in site


def test_the_caddy_configuration_is_valid(tmp_path: Path) -> None:
    caddy = tool("caddy")
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path)}
    done = subprocess.run([caddy, "validate", "--config", str(DEPLOY / "Caddyfile"),
                           "--adapter", "caddyfile"], capture_output=True, text=True,
                          timeout=60, check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout + done.stderr


def served_metric_names() -> set[str]:
    return set(re.findall(r"(?m)^# TYPE (loyalty_\w+) ", metrics.render().decode()))


def test_the_alerts_use_metrics_the_bot_serves() -> None:
    served = served_metric_names()
    assert len(served) >= 14
    used = set(re.findall(r"\bloyalty_\w+", (DEPLOY / "prometheus" / "alerts.yml").read_text()))
    assert used
    for name in used:
        assert name in served or re.sub(r"_(bucket|count|sum)$", "", name) in served, name


def test_the_readme_lists_every_metric() -> None:
    readme = (ROOT / "README.md").read_text()
    for name in served_metric_names():
        assert f"`{name}`" in readme, name
