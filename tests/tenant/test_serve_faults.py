"""`tenant serve` fault flags reach the app they build: the download path and the token endpoint can
be faulted, and `--expire-links N` expires the first N links only (then a client can finish)."""

from __future__ import annotations

import gzip
import re

import pytest
from starlette.testclient import TestClient

from auth0_migrate.cli import build_parser
from auth0_migrate.tenant.serve import build_app

DOWNLOAD = "GET /exports/{id}/{file}"


def _served(tmp_path, *flags: str):  # noqa: ANN001, ANN202
    args = build_parser().parse_args(["tenant", "serve", "--db", str(tmp_path / "t.sqlite"), "--client-id", "cli",
                                      "--client-secret", "secret", *flags])
    app, base_url = build_app(args)
    return app, base_url


def test_serve_flags_fault_the_token_endpoint_and_the_download_and_expire_the_first_n_links(tmp_path,
                                                                                             oas_wrap) -> None:  # noqa: ANN001
    app, base_url = _served(tmp_path, "--expire-links", "2", "--fault", "POST /oauth/token@1=503",
                            "--fault", f"{DOWNLOAD}@1=503")
    faults = app.state.tenant.faults
    assert faults.expire_links == 2
    try:
        with oas_wrap(TestClient(app, base_url=base_url)) as http:
            form = {"grant_type": "client_credentials", "client_id": "cli", "client_secret": "secret",
                    "audience": f"{base_url}/api/v2/"}
            refused = http.post("/oauth/token", data=form)
            assert refused.status_code == 503 and refused.json()["error"] == "server_error"
            assert faults.injected == {"POST /oauth/token": 1}
            headers = {"authorization": f"Bearer {http.post('/oauth/token', data=form).json()['access_token']}"}
            made = http.post("/api/v2/connections", headers=headers, json={"name": "DB", "strategy": "auth0"})
            assert made.status_code == 201, made.text
            created = http.post("/api/v2/users", headers=headers, json={
                "connection": "DB", "email": "a@example.com", "password": "Pw-1!x"})
            assert created.status_code == 201, created.text
            job = http.post("/api/v2/jobs/users-exports", headers=headers, json={"format": "json"}).json()
            answers = [http.get(http.get(f"/api/v2/jobs/{job['id']}", headers=headers).json()["location"])
                       for _ in range(4)]
            assert faults.injected == {"POST /oauth/token": 1, "expire_links": 2, DOWNLOAD: 1}
            # the 1st download call meets the fault (before its link is even checked), the 2nd the second
            # expired link; the 3rd and 4th links are good
            assert [r.status_code for r in answers] == [503, 403, 200, 200]
            assert [r.headers.get("x-injected-fault") for r in answers] == ["true", None, None, None]
            assert "Request has expired" in answers[1].text
            assert b"a@example.com" in gzip.decompress(answers[3].content)
    finally:
        app.state.tenant.close()


def test_no_link_expires_without_the_flag(tmp_path) -> None:  # noqa: ANN001
    app, _ = _served(tmp_path)
    try:
        assert app.state.tenant.faults.expire_links == 0 and not app.state.tenant.faults.link_born_expired()
        assert app.state.tenant.faults.injected == {}
    finally:
        app.state.tenant.close()



def test_the_fault_flag_takes_each_action_word_and_refuses_others(tmp_path) -> None:  # noqa: ANN001
    from auth0_migrate.clidoc import render
    from auth0_migrate.tenant.faults import SPEC, WORDS

    app, _ = _served(tmp_path, *[f for word in WORDS for f in ("--fault", f"{DOWNLOAD}@2={word}x3")])
    try:
        assert [(c.endpoint, c.nth, c.action, c.times) for c in app.state.tenant.faults.calls] == [
            (DOWNLOAD, 2, word, 3) for word in WORDS]
    finally:
        app.state.tenant.close()
    assert f"--fault '{SPEC}'" in render()  # the help names every word
    with pytest.raises(ValueError, match=re.escape(SPEC)):
        _served(tmp_path, "--fault", f"{DOWNLOAD}@1=mangled")
