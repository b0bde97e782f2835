"""Nothing deleted that was not carried (issue 8): cutover deletes a source user only when everything it holds
beside profile, hash and grants was verified in the target, or the owner allowed the loss by kind.

The carriers of organizations, linked accounts and MFA record holdings in the ledger as they read and write
them; here the holding is recorded through the ledger's own API between a real run and the cutover run (the
second run), so the gating is driven by the real pipeline against the local tenant.
"""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console

from auth0_migrate.errors import UsageError
from auth0_migrate.ledger import Ledger
from auth0_migrate.model import MigrationOptions
from auth0_migrate.pipeline import check_options
from auth0_migrate.report import render_result

from .conftest import SOURCE, TARGET, World, dump, ingest_only, migrate, options


def _first_run(world: World, tmp_path, **kwargs):
    seeded = world.seed(users=6)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    opts = options(tmp_path, password_hashes=hashes, **kwargs)
    result = migrate(world, opts)
    assert result.exit_code == 0, dump(result)
    assert result.users["verified"] == seeded.users
    return seeded, hashes


def _hold(state: str, source_id: str, kind, item: str, state_name="found", detail=None) -> None:
    with Ledger.open(state, lock=False, create=False) as ledger:
        ordinal = ledger.ordinals_by_source_id()[source_id]
        ledger.add_holdings(kind, [(ordinal, item)])
        ledger.set_holdings(kind, state_name, [(ordinal, item)], detail)


def test_a_user_holding_what_was_not_carried_stays_in_the_source(world: World, tmp_path) -> None:
    seeded, hashes = _first_run(world, tmp_path)
    state = str(tmp_path / "state.sqlite")
    source = world.users(SOURCE)
    push_user, org_user = source[1], source[3]
    _hold(state, push_user["user_id"], "mfa-factor", "push", "cannot",
          "push factors cannot be imported; the user enrols again")
    _hold(state, org_user["user_id"], "organization", "org_abc", "carried")  # written, not yet read back
    _hold(state, org_user["user_id"], "organization-role", "org_abc rol_1", "verified")

    result = migrate(world, options(tmp_path, password_hashes=hashes, delete_source_users=True))
    assert result.exit_code == 3, dump(result)
    assert result.users["kept_in_source"] == 2
    assert result.users["deleted_from_source"] == seeded.users - 2
    assert result.users["deletion_not_confirmed"] == 0
    assert sorted(u["email"] for u in world.users(SOURCE)) == sorted([push_user["email"], org_user["email"]])
    failures = {f.user_id: f for f in result.failures}
    assert set(failures) == {push_user["user_id"], org_user["user_id"]}
    push = failures[push_user["user_id"]]
    assert (push.stage, push.code, push.email) == ("cutover", "KEPT_IN_SOURCE", push_user["email"])
    assert "mfa-factor push (cannot be carried: push factors cannot be imported; the user enrols again)" \
        in push.message
    assert push.message.endswith("give --allow-loss mfa to delete it anyway")
    org = failures[org_user["user_id"]]
    assert "organization org_abc (carried, not verified in the target" in org.message
    assert "rol_1" not in org.message  # the verified role is not what holds it back
    assert "--allow-loss organizations " in org.message
    assert result.reports["failures_by_code"] == {"KEPT_IN_SOURCE": 2}
    assert result.reports["holdings_not_carried"] == [
        {"user_id": push_user["user_id"], "kind": "mfa-factor", "item": "push",
         "detail": "push factors cannot be imported; the user enrols again"}]
    assert result.as_dict()["users"]["kept_in_source"] == 2

    # Resumable: once the membership is verified, the same command deletes that user (and only that one).
    _hold(state, org_user["user_id"], "organization", "org_abc", "verified")
    result = migrate(world, options(tmp_path, password_hashes=hashes, delete_source_users=True))
    assert result.exit_code == 3, dump(result)
    assert result.users["kept_in_source"] == 1
    assert result.users["deleted_from_source"] == seeded.users - 1
    assert [u["email"] for u in world.users(SOURCE)] == [push_user["email"]]
    assert [f.user_id for f in result.failures] == [push_user["user_id"]]

    # The owner accepts losing the push factor: the user goes, and the run is clean.
    result = migrate(world, options(tmp_path, password_hashes=hashes, delete_source_users=True,
                                    allow_loss=("mfa",)))
    assert result.exit_code == 0, dump(result)
    assert (result.users["kept_in_source"], result.users["deleted_from_source"]) == (0, seeded.users)
    assert result.failures == []
    assert world.users(SOURCE) == []
    # What was lost with it is still named in the output.
    assert [h["item"] for h in result.reports["holdings_not_carried"]] == ["push"]
    out = io.StringIO()
    render_result(result, Console(file=out, width=300))
    assert f"  {push_user['user_id']}: mfa-factor push: push factors cannot be imported; the user enrols again" \
        in out.getvalue()
    assert len(world.users(TARGET)) == seeded.users


def test_allow_loss_of_another_group_does_not_let_the_user_go(world: World, tmp_path) -> None:
    seeded, hashes = _first_run(world, tmp_path)
    state = str(tmp_path / "state.sqlite")
    user = world.users(SOURCE)[0]
    _hold(state, user["user_id"], "identity", "google-oauth2|123", "carried")
    result = migrate(world, options(tmp_path, password_hashes=hashes, delete_source_users=True,
                                    allow_loss=("organizations", "mfa")))
    assert result.exit_code == 3, dump(result)
    assert [u["email"] for u in world.users(SOURCE)] == [user["email"]]
    (failure,) = result.failures
    assert failure.code == "KEPT_IN_SOURCE"
    assert "identity google-oauth2|123 (carried, not verified in the target)" in failure.message
    assert "--allow-loss identities " in failure.message


def test_kept_in_source_with_kept_ids_in_one_tenant(world: World, tmp_path) -> None:
    """With `keep` the grants are applied again after cutover; a kept user still holds its grants and source."""
    seeded = world.seed(users=5)
    world.connection(TARGET)
    hashes = world.hash_file(str(tmp_path / "hashes.ndjson"))
    user = world.users(SOURCE)[2]
    state = str(tmp_path / "state.sqlite")
    opts = options(tmp_path, password_hashes=hashes, user_ids="keep", delete_source_users=True)
    # The holding is recorded after the export, before the first (and gated) cutover.
    ingest_only(world, opts)
    _hold(state, user["user_id"], "mfa-factor", "webauthn-roaming", "cannot", "WebAuthn keys cannot be imported")
    result = migrate(world, opts)
    assert result.exit_code == 3, dump(result)
    assert result.users["kept_in_source"] == 1
    assert result.users["deleted_from_source"] == seeded.users - 1
    assert [u["email"] for u in world.users(SOURCE)] == [user["email"]]
    (failure,) = result.failures
    assert failure.code == "KEPT_IN_SOURCE"
    assert "mfa-factor webauthn-roaming (cannot be carried: WebAuthn keys cannot be imported)" in failure.message
    assert failure.message.endswith("until then both copies share its id (--user-ids keep), so Auth0's id-only "
                                    "endpoints are ambiguous for it")


def test_unknown_allow_loss_names_are_refused() -> None:
    opts = MigrationOptions(source_connection=SOURCE, target_connection=TARGET,
                            allow_loss=("organizations", "sessions"))
    with pytest.raises(UsageError, match=r"--allow-loss sessions: unknown; the names are organizations, "
                                         r"identities, mfa"):
        check_options(opts, same_tenant=True)


def test_cli_allow_loss_unknown_name_exits_2(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "auth0_migrate", "run", "--source-connection", SOURCE,
                           "--target-connection", TARGET, "--domain", "http://127.0.0.1:9", "--client-id", "x",
                           "--client-secret", "y", "--delete-source-users", "--allow-loss", "mfa,groups",
                           "--state", str(tmp_path / "s.sqlite")], capture_output=True, text=True, check=False)
    assert done.returncode == 2, done.stderr
    assert "--allow-loss groups: unknown" in done.stderr


def test_cli_allow_loss_takes_a_comma_separated_list() -> None:
    from auth0_migrate.cli import _options, build_parser

    args = build_parser().parse_args(["run", "--source-connection", SOURCE, "--target-connection", TARGET,
                                      "--delete-source-users", "--allow-loss", "mfa, organizations,mfa"])
    assert _options(args).allow_loss == ("mfa", "organizations")
    args = build_parser().parse_args(["plan", "--source-connection", SOURCE, "--target-connection", TARGET])
    assert _options(args).allow_loss == ()
