"""How the servers are started: Rasa's HTTP API only with a token, and the
cluster's Rasa servers trusting exactly their one proxy's forwarded address."""

from __future__ import annotations

import pytest

from bot.run import cluster, serve
from bot.settings import SettingsError, load

TOKEN = "a-long-enough-token-0123456789"


def test_rasa_runs_without_its_http_api_unless_a_token_is_set(tmp_path):
    model = tmp_path / "model.tar.gz"
    off = serve.rasa_command("run", model, serve.child_env({}))
    assert "--enable-api" not in off and "--auth-token" not in off
    with_token = serve.child_env({"RASA_API_TOKEN": TOKEN})
    on = serve.rasa_command("run", model, with_token)
    assert on[on.index("--auth-token") + 1] == TOKEN and "--enable-api" in on
    # `rasa shell` is for staff at the terminal: never the API.
    shell = serve.rasa_command("shell", model, with_token)
    assert "--enable-api" not in shell


@pytest.mark.parametrize("token", ["short", " " + TOKEN, TOKEN + "\n"])
def test_a_guessable_or_mistyped_api_token_is_refused_by_name(token):
    with pytest.raises(SettingsError, match="RASA_API_TOKEN"):
        load({"RASA_API_TOKEN": token})


def test_the_cluster_rasa_servers_trust_one_proxy_which_sets_the_address(
    tmp_path,
):
    model = tmp_path / "model.tar.gz"
    model.touch()
    env = {
        "BOT_PROFILE": "production",
        "BOT_DATABASE_URL": "postgresql+psycopg2://bot@127.0.0.1:5432/bot",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "BOT_MODEL": str(model),
        "BOT_CLUSTER_DIR": str(tmp_path / "cluster"),
    }
    built = cluster.build(2, env)
    rasa = [m for m in built.members if m.name.startswith("rasa")]
    assert len(rasa) == 2
    assert all(m.env["SANIC_PROXIES_COUNT"] == "1" for m in rasa)
    assert all("SANIC_PROXIES_COUNT" not in m.env for m in built.members
               if not m.name.startswith("rasa"))  # fmt: skip
    # The one proxy replaces what a client sent, so a client cannot choose
    # the address the rate limit counts.
    conf = (tmp_path / "cluster" / "nginx.conf").read_text()
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in conf
    assert "$proxy_add_x_forwarded_for" not in conf
