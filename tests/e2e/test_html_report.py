"""`--report FILE.html`: the page to share, drawn from the ledger, rendered in a real browser (headless Chromium).

Each test drives a real run against the local tenant, writes the report the way the CLI does, opens it in
Chromium (`--dump-dom`: what the browser made of the page) and checks what is on it: the numbers, the users
named with their codes, the command to resume, and that no hash or secret from the inputs is anywhere in it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
from html import unescape
from pathlib import Path

import pytest

from auth0_migrate.cli import main
from auth0_migrate.html_report import write_report
from auth0_migrate.model import MigrationOptions
from auth0_migrate.stages import idmap

from .conftest import SOURCE, TARGET, World, dump, migrate, options
from .test_cli import CLIENT_ID, CLIENT_SECRET, COMMAND_SECONDS, Server, _cli, _export_hashes, _seed, server
from .test_refresh import change_the_source, custom_hash_file, go, migrated

__all__ = ["migrated", "server"]  # fixtures of test_cli.py (the served tenant) and test_refresh.py, used here too

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def browser_text(page: Path) -> str:
    """The page as Chromium parsed it (its DOM), reduced to the text a person reads."""
    if CHROMIUM is None:
        pytest.skip("no headless browser here: install Debian's `chromium` package (apt-get install -y chromium) "
                    "to check the report in a real browser")
    profile = page.parent / "chromium-profile"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    assert "<h1>Migration report</h1>" in dom, dom[:2000]  # the browser got the page, not an error page
    text = re.sub(r"<[^>]+>", " ", dom)
    return re.sub(r"\s+", " ", unescape(text))


def self_contained(html: str) -> None:
    """No script, and nothing fetched from anywhere: no src, no href, no url(), no @import."""
    assert "<script" not in html.lower()
    assert not re.search(r"\s(src|href)\s*=", html, re.I)
    assert "url(" not in html and "@import" not in html


def hash_file_without_first(world: World, tmp_path: Path) -> tuple[str, list[dict[str, str]], dict[str, str]]:
    lines = Path(world.hash_file(str(tmp_path / "all.ndjson"))).read_text(encoding="utf-8").splitlines()
    path = tmp_path / "hashes.ndjson"
    with open(path, "w", encoding="utf-8", opener=lambda p, f: os.open(p, f, 0o600)) as out:
        out.write("\n".join(lines[1:]) + "\n")  # the first user's hash is missing: that user is held back
    rows = [json.loads(line) for line in lines]
    return str(path), rows, rows[0]


def test_report_of_a_run_names_held_back_users_files_stages_and_the_command(world: World, tmp_path: Path) -> None:
    world.seed(users=8)
    world.connection(TARGET)
    hashes, rows, missing = hash_file_without_first(world, tmp_path)
    state = str(tmp_path / "state.sqlite")
    result = migrate(world, options(tmp_path, password_hashes=hashes, state=state))
    assert result.exit_code == 3 and result.users["held_back"] == 1 and result.users["imported"] == 7, dump(result)
    held = next(u for u in world.users(SOURCE) if u["email"] == missing["email"])

    page = tmp_path / "report.html"
    assert main(["status", "--state", state, "--report", str(page)]) == 3
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    html = page.read_text(encoding="utf-8")
    self_contained(html)
    for row in rows:  # the hash file's hashes are nowhere on the page
        assert row["passwordHash"] not in html
    text = browser_text(page)

    assert "exit status 3" in text
    assert "8 selected" in text and "7 migrated" in text and "1 held back" in text
    # held back, by code, with the user's id and email and why
    assert "Held back (left in the source): 1" in text
    assert "NO_PASSWORD_HASH : 1 user " in text
    assert held["user_id"] in text and missing["email"] in text
    # the timeline: stages of the run's session, with their calls
    assert "Session 1: run" in text and "finished" in text
    for stage in ("export source users", "import files", "map ids and check profiles in the target",
                  "verify permissions in the target"):
        assert stage in text
    # import files and their fill against 500 KB
    (f,) = result.reports["import_files"]
    assert f"1 files, 7 users, {f['bytes']:,} bytes" in text
    # rate-limit headroom was sampled
    assert "source and target (line 1)" in text
    # the exact command: the options of the run, the ledger, the secret from the environment only
    command = (f"auth0-migrate run --domain {world.base_url} --client-id {world.client_id} --source-connection "
               f"{SOURCE} --target-connection {TARGET} --password-hashes {hashes} --state {state}")
    assert command in text
    assert world.client_secret not in html


def test_report_of_an_interrupted_then_resumed_run_shows_both_sessions(world: World, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    world.seed(users=5)
    world.connection(TARGET)
    state = str(tmp_path / "state.sqlite")

    class Killed(BaseException):
        pass

    real = idmap.map_ids

    async def killed(*args: object, **kwargs: object) -> None:
        raise Killed

    monkeypatch.setattr(idmap, "map_ids", killed)
    with pytest.raises(Killed):
        migrate(world, options(tmp_path, state=state))
    page = tmp_path / "stopped.html"
    write_report(str(page), state)
    text = browser_text(page)
    assert "Session 1: run" in text and "stopped: Killed" in text  # the killed session fired, and says so
    assert "Resume it (the ledger keeps every finished step)" in text
    assert f"--state {state}" in text and "Session 2" not in text

    monkeypatch.setattr(idmap, "map_ids", real)
    result = migrate(world, options(tmp_path, state=state))
    assert result.exit_code == 0, dump(result)
    write_report(str(page), state)
    text = browser_text(page)
    assert "Session 1: run" in text and "Session 2: run" in text and "exit status 0" in text
    assert "map ids and check profiles in the target" in text  # done by the resumed session
    assert "Nothing left to do" in text and "Resume it" not in text


def test_no_hash_or_mfa_secret_from_the_inputs_reaches_the_report(world: World, tmp_path: Path) -> None:
    """Users from a file with password hashes and TOTP secrets, some refused for exactly those fields: the report
    names each refused user and its code, and holds none of the hashes or secrets (good or bad)."""
    from auth0_migrate.passwords import make_credential

    world.connection(SOURCE)
    world.connection(TARGET)
    good = make_credential("pw-good", "sha256", salt="s1", salt_position="prefix")
    other = make_credential("pw-other", "sha256", salt="s2", salt_position="prefix")
    bad_hash = {"custom_password_hash": {"algorithm": "sha256",
                                         "hash": {"value": "zz-not-hex-SECRETHASHVALUE", "encoding": "hex"}}}
    secret, bad_secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "JBSWY3DPEHPK3PXP1SECRET8"
    users = [
        {"user_id": "fine", "email": "fine@example.com", "mfa_factors": [{"totp": {"secret": secret}}], **good},
        {"user_id": "badtotp", "email": "badtotp@example.com", "mfa_factors": [{"totp": {"secret": bad_secret}}],
         **other},
        {"user_id": "badhash", "email": "badhash@example.com", **bad_hash},
    ]
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users))
    state = str(tmp_path / "state.sqlite")
    result = migrate(world, options(tmp_path, from_file=str(path), state=state))
    assert result.exit_code == 3, dump(result)
    refused = {f.user_id: f.code for f in result.failures}
    assert set(refused) == {"auth0|badtotp", "auth0|badhash"}, dump(result)  # both refused for their secret

    page = tmp_path / "report.html"
    assert main(["status", "--state", state, "--report", str(page)]) == 3
    html = page.read_text(encoding="utf-8")
    self_contained(html)
    for value in (secret, bad_secret, "SECRETHASHVALUE", good["custom_password_hash"]["hash"]["value"],
                  other["custom_password_hash"]["hash"]["value"], "pw-good", "pw-other"):
        assert value not in html
    text = browser_text(page)
    for user_id, code in refused.items():
        assert user_id in text and f"{code} : " in text
    assert "badtotp@example.com" in text and "badhash@example.com" in text


def test_headroom_is_sampled_every_few_seconds_as_the_governor_sees_it(oas_wrap: object, tmp_path: Path) -> None:
    """A tenant with a small bucket (2 req/s, 10 at once): the run drains it, and the ledger keeps the lowest
    headroom seen, at most every 5 s of the run's clock; the report draws it and names the lowest."""
    from auth0_migrate.clock import ManualClock
    from auth0_migrate.ledger import Ledger
    from auth0_migrate.tenant import TenantConfig, create_app

    clock = ManualClock()
    app = create_app(TenantConfig(name="tenant.local", client_id="e2e-client", client_secret="e2e-secret",
                                  clock=clock, base_url="http://tenant.local", rate=2.0, burst=10))
    world = World(app, clock, "http://tenant.local", "e2e-client", "e2e-secret", oas_wrap)
    try:
        world.seed(users=20)
        world.connection(TARGET)
        state = str(tmp_path / "state.sqlite")
        started = clock.now()
        result = migrate(world, options(tmp_path, state=state))
        assert result.exit_code == 0, dump(result)
        assert clock.now() - started > 20  # the bucket paced the run: it took time on the run's clock
    finally:
        world.tenant.close()
    with Ledger.open_readonly(state) as ledger:
        samples = ledger.rate_samples()
        stages = ledger.stage_times()
    assert len(samples) >= 3
    assert {s.tenant for s in samples} == {"source and target"} and {s.size for s in samples} == {10}
    assert all(b.at - a.at >= 5.0 for a, b in zip(samples, samples[1:], strict=False))
    lowest = min(s.remaining for s in samples)
    assert lowest <= 2  # the run used the bucket up to (nearly) nothing, and the samples show it
    assert all(st.ended is not None and st.ended >= st.started for st in stages)
    assert sum(st.ended - st.started for st in stages if st.ended is not None) > 0
    assert sum(st.calls for st in stages) > 20

    page = tmp_path / "report.html"
    write_report(str(page), state)
    text = browser_text(page)
    assert f"source and target (line 1) {len(samples)} {lowest} of 10 {100 * lowest / 10:.0f} %" in text


def test_cli_run_stopped_by_sigterm_then_resumed_then_verified_writes_the_report_each_time(tmp_path: Path,
                                                                                            server: Server) -> None:
    """The real command line against a served tenant: `run --report` stopped mid-run still writes the page (it
    says the run was interrupted and gives the command to resume); the same command finishes and writes it
    again with both sessions; `verify --report` adds its own; a command stopped before any ledger says so."""
    seeded = _seed(server, "Rep-Legacy", 60, "Rep-New")
    hashes = tmp_path / "hashes.ndjson"
    lines = _export_hashes(server, "Rep-Legacy", hashes)
    state, page = tmp_path / "state.sqlite", tmp_path / "report.html"
    flags = ["--source-connection", "Rep-Legacy", "--target-connection", "Rep-New", "--state", str(state),
             "--password-hashes", str(hashes)]
    command = [*_cli(), "run", *flags, "--report", str(page)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server.env())
    seen: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:  # one line a phase: stderr is not a terminal
            seen.append(line)
            if "read direct permissions" in line:
                process.send_signal(signal.SIGTERM)
                break
        _, err = process.communicate(timeout=COMMAND_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
    err = "".join(seen) + err
    assert process.returncode == 130, err  # the signal stopped it mid-run
    assert f"report: {page}" in err
    assert stat.S_IMODE(page.stat().st_mode) == 0o600
    assert CLIENT_SECRET not in page.read_text(encoding="utf-8")
    text = browser_text(page)
    assert "Session 1: run" in text and "interrupted" in text and "Resume it" in text
    resume = (f"auth0-migrate run --domain {server.url} --client-id {CLIENT_ID} --source-connection Rep-Legacy "
              f"--target-connection Rep-New --password-hashes {hashes} --state {state}")
    assert resume in text and "AUTH0_CLIENT_SECRET" in text

    done = subprocess.run(command, capture_output=True, text=True, timeout=COMMAND_SECONDS, env=server.env())
    assert done.returncode == 0, done.stderr[-3000:]
    html = page.read_text(encoding="utf-8")
    assert not any(line["passwordHash"] in html for line in lines)
    text = browser_text(page)
    assert "Session 2: run" in text and "exit status 0" in text and "Nothing left to do" in text
    assert f"{seeded.users} selected" in text and f"{seeded.users} migrated" in text

    done = server.run("verify", *flags, "--report", str(page))
    assert done.returncode == 0, done.stderr[-3000:]
    text = browser_text(page)
    assert "Session 3: verify" in text and "map ids and check profiles in the target" in text

    elsewhere = tmp_path / "never.html"
    done = server.run("run", *flags[:4], "--state", str(tmp_path / "none.sqlite"), "--password-hashes",
                      str(tmp_path / "missing.ndjson"), "--report", str(elsewhere))
    assert done.returncode == 2 and "--password-hashes" in done.stderr, done.stderr
    assert "no report written: there is no ledger at" in done.stderr and not elsewhere.exists()


def test_failed_import_jobs_give_the_retry_command_and_429s_land_in_their_stage(world: World, tmp_path: Path) -> None:
    """Every import job fails: the users are failed as retryable (the ledger keeps their hashes for the retry, in
    its 0600 file); the report offers the retry and shows none of those hashes. 429s on job polls are counted in
    the stage that made them."""
    from auth0_migrate.ledger import Ledger
    from auth0_migrate.passwords import make_credential

    world.connection(SOURCE)
    world.connection(TARGET)
    users = [{"user_id": f"u{n}", "email": f"u{n}@example.com", **make_credential(f"pw-{n}", "sha256", salt=f"s{n}")}
             for n in range(3)]
    path = tmp_path / "users.json"
    path.write_text(json.dumps(users))
    world.tenant.faults.fail_jobs.update({1, 2, 3})
    world.tenant.faults.fail_call("GET /api/v2/jobs/{id}", nth=1, action=429, times=4)
    state = str(tmp_path / "state.sqlite")
    result = migrate(world, options(tmp_path, from_file=str(path), state=state))
    assert world.tenant.faults.injected["GET /api/v2/jobs/{id}"] == 4  # the 429s fired
    assert result.reports["failures_by_code"] == {"JOB_FAILED": 3}, dump(result)
    with Ledger.open_readonly(state) as ledger:
        (imports,) = [st for st in ledger.stage_times() if st.stage == "import files"]
    assert imports.http_429 == 4 and imports.retries >= 4

    page = tmp_path / "report.html"
    write_report(str(page), state)
    html = page.read_text(encoding="utf-8")
    hashes = [u["custom_password_hash"]["hash"]["value"] for u in users]
    assert all(h.encode() in Path(state).read_bytes() for h in hashes)  # still in the ledger, for the retry
    assert not any(h in html for h in hashes)  # never on the page
    text = browser_text(page)
    assert "Retry the 3 users whose import job failed or expired" in text
    assert f"auth0-migrate run --domain {world.base_url}" in text and f"--from-file {path}" in text
    assert "JOB_FAILED : 3 users" in text
    row = re.search(r"(?<!pack )import files \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC [\d.]+ (s|min \d+ s) "
                    r"(\d+) (\d+) (\d+)", text)
    assert row is not None and int(row.group(3)) == 4, text  # the stage's row: its 429s


def test_a_refresh_is_its_own_session_and_its_delta_is_in_the_summary(
        migrated: tuple[World, Path, dict[str, str], MigrationOptions]) -> None:
    world, tmp_path, passwords, opts = migrated
    change_the_source(world, passwords)
    newer = custom_hash_file(world, str(tmp_path / "hashes-2.ndjson"))
    refresh = MigrationOptions(**{**opts.__dict__, "password_hashes": newer, "refresh": True})
    result = go(world, refresh)
    assert result.delta is not None and result.delta["new"] == 3, dump(result)  # the refresh carried new users
    assert opts.state is not None
    page = tmp_path / "report.html"
    write_report(str(page), opts.state)
    text = browser_text(page)
    assert "Session 1: run" in text and "Session 2: run --refresh" in text
    assert "export source users again" in text
    assert "refresh: new 3" in text and "refresh: updated 4" in text and "refresh: deleted in source 1" in text
