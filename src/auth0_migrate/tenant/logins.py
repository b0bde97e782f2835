"""The token endpoint `POST /oauth/token`: user logins (the password-realm and password grants)
beside the machine grant `oauth.client_credentials`.

This is how "the user can still log in with the old password" is checked after a migration: the
tenant verifies the password against the credential exactly as imported (`password_hash` bcrypt or
any `custom_password_hash` algorithm, `credentials.verify_password`) and, as Auth0 does after the
first successful login with an imported hash, replaces a non-bcrypt credential with its own bcrypt
(reference §2.7 "After import").

Grants:

* `http://auth0.com/oauth/grant-type/password-realm`: `username` (email or username), `password`,
  `realm` (the connection name), `client_id`, optional `client_secret`, `audience`, `scope`.
* `password`: the same without `realm`; Auth0 uses the tenant's default directory, the local tenant
  looks in the connection named by `realm` when given, else in every connection in creation order,
  and takes the first user whose email or username matches.

Answers (Auth0's):

* wrong password, unknown user, or a user with no credential: 403
  `{"error":"invalid_grant","error_description":"Wrong email or password."}`;
* a blocked user with the right password: 401 `{"error":"unauthorized","error_description":"user is
  blocked"}` (the body and status Auth0's authentication-API error table gives for a blocked user;
  the login still counts in `logins_count`/`last_login`, as Auth0's search docs say);
* success: `{"access_token","id_token"(with scope openid),"scope","expires_in","token_type"}`.
  `logins_count` goes up by one and `last_login`/`last_ip` are set.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import jwt
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from . import directory, oauth
from .errors import OAuthError
from .http import Ctx, Router
from .store import dumps, loads

router = Router()

PASSWORD_REALM = "http://auth0.com/oauth/grant-type/password-realm"
PASSWORD = "password"

WRONG = ("invalid_grant", "Wrong email or password.")
BLOCKED_STATUS = 401
BLOCKED = ("unauthorized", "user is blocked")

REHASH_COST = 10
"""Auth0's own bcrypt cost, used when a login replaces an imported credential."""


def _check_client(ctx: Ctx, form: dict[str, str]) -> str:
    client_id = form.get("client_id")
    if not client_id:
        raise OAuthError(400, "invalid_request", "Missing required parameter: client_id")
    if form.get("client_secret"):
        oauth.check_client(ctx.store, client_id, form["client_secret"])
    elif ctx.store.one("SELECT 1 FROM clients WHERE client_id = ?", (client_id,)) is None:
        raise OAuthError(401, "access_denied", "Unauthorized")
    return client_id


def _find_user(ctx: Ctx, username: str, realm: str | None) -> sqlite3.Row | None:
    if realm:
        conn = directory.connection_by_name(ctx.store, realm)
        if conn is None:
            raise OAuthError(400, "invalid_request", "the connection was not found")
        connections = [conn]
    else:
        connections = ctx.store.query("SELECT * FROM connections ORDER BY rowid")
    email = username.lower()
    for conn in connections:
        row = ctx.store.one("SELECT * FROM users WHERE connection_id = ? AND (email = ? OR username = ?)"
                            " ORDER BY (email = ?) DESC, pk LIMIT 1", (conn["id"], email, username, email))
        if row is not None:
            return row
    return None


def _is_final(credential: dict[str, Any]) -> bool:
    """True when the credential is Auth0's own kind (plain bcrypt `password_hash`) and stays as it is."""
    return set(credential) == {"password_hash"}


def _verify(password: str, credential: dict[str, Any]) -> tuple[bool, dict[str, Any] | None]:
    """Check the password; when it is right and the credential is imported, also make the bcrypt."""
    from .. import passwords  # hash libraries load on the first login, not at tenant start
    from .credentials import verify_password

    try:
        if not verify_password(password, credential):
            return False, None
    except passwords.UnsupportedDigestError as exc:
        # Auth0 would compute it; this machine's OpenSSL cannot (MDC-2). Say so rather than "wrong password".
        raise OAuthError(500, "server_error", f"the local tenant cannot verify this hash: {exc}") from None
    if _is_final(credential):
        return True, None
    return True, {"password_hash": passwords.bcrypt_hash(password, REHASH_COST)}


async def _login(ctx: Ctx, form: dict[str, str], realm: str | None) -> Response:
    client_id = _check_client(ctx, form)
    username = form.get("username")
    password = form.get("password")
    if not username:
        raise OAuthError(400, "invalid_request", "Missing required parameter: username")
    if not password:
        raise OAuthError(400, "invalid_request", "Missing required parameter: password")
    audience = form.get("audience") or ctx.tenant.config.audience
    scope = form.get("scope", "")

    row = _find_user(ctx, username, realm)
    credential = loads(row["credential"]) if row is not None and row["credential"] else None
    if row is None or not isinstance(credential, dict):
        raise OAuthError(403, *WRONG)
    ok, new_credential = await run_in_threadpool(_verify, password, credential)
    if not ok:
        raise OAuthError(403, *WRONG)

    profile = loads(row["profile"])
    blocked = bool(profile.get("blocked"))
    changes: dict[str, Any] = {"logins_count": int(profile.get("logins_count") or 0) + 1,
                               "last_login": directory.iso(ctx.now)}
    if ctx.request.client is not None and ctx.request.client.host:
        changes["last_ip"] = ctx.request.client.host
    with ctx.store.tx() as db:
        current = db.execute("SELECT * FROM users WHERE pk = ?", (row["pk"],)).fetchone()
        if current is None:  # deleted meanwhile
            raise OAuthError(403, *WRONG)
        if not blocked and new_credential is not None and current["credential"] == row["credential"]:
            changes["credential"] = new_credential  # Auth0 drops the imported hash after the first login
        # The login is recorded without touching updated_at (profile fields were not changed).
        profile = loads(current["profile"])
        profile.update({k: v for k, v in changes.items() if k != "credential"})
        if "credential" in changes:
            db.execute("UPDATE users SET profile = ?, credential = ? WHERE pk = ?",
                       (dumps(profile), dumps(changes["credential"]), row["pk"]))
        else:
            db.execute("UPDATE users SET profile = ? WHERE pk = ?", (dumps(profile), row["pk"]))
    if blocked:
        raise OAuthError(BLOCKED_STATUS, *BLOCKED)

    user_id = row["user_id"]
    extra = {"azp": client_id, "gty": "password", "scope": scope}  # a user token carries the scope asked for
    access = oauth.issue_token(ctx, user_id, [], audience, extra)
    body: dict[str, Any] = {"access_token": access, "expires_in": oauth.TOKEN_LIFETIME,
                            "token_type": "Bearer"}
    if scope:
        body["scope"] = scope
    if "openid" in scope.split():
        now = int(ctx.now)
        claims = {"iss": f"{ctx.tenant.config.base_url}/", "sub": user_id, "aud": client_id, "iat": now,
                  "exp": now + 36000}
        if row["email"]:
            claims["email"] = row["email"]
            claims["email_verified"] = bool(profile.get("email_verified"))
        for key in ("name", "nickname", "picture"):
            if key in profile:
                claims[key] = profile[key]
        body["id_token"] = jwt.encode(claims, ctx.tenant.config.signing_key, algorithm="HS256")
    return JSONResponse(body)


async def password_realm_grant(ctx: Ctx, form: dict[str, str]) -> Response:
    realm = form.get("realm")
    if not realm:
        raise OAuthError(400, "invalid_request", "Missing required parameter: realm")
    return await _login(ctx, form, realm)


async def password_grant(ctx: Ctx, form: dict[str, str]) -> Response:
    return await _login(ctx, form, form.get("realm") or None)


GrantHandler = Callable[[Ctx, dict[str, str]], Awaitable[Response]]

GRANT_HANDLERS: dict[str, GrantHandler] = {
    "client_credentials": oauth.client_credentials,
    PASSWORD_REALM: password_realm_grant,
    PASSWORD: password_grant,
}
"""grant_type -> handler(ctx, form): the machine grant (`oauth`) and the user-login grants."""


async def _form(ctx: Ctx) -> dict[str, str]:
    raw = await ctx.body()
    ctype = ctx.request.headers.get("content-type", "")
    try:
        if "application/json" in ctype:
            value = json.loads(raw or b"{}")
            if not isinstance(value, dict):
                raise ValueError
            return {k: str(v) for k, v in value.items()}
        return dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except (ValueError, UnicodeDecodeError):
        raise OAuthError(400, "invalid_request", "Invalid request body") from None


@router.route("POST", "/oauth/token", auth=False, api=False)
async def token(ctx: Ctx) -> Response:
    form = await _form(ctx)
    grant = form.get("grant_type", "")
    handler = GRANT_HANDLERS.get(grant)
    if handler is None:
        raise OAuthError(403, "unsupported_grant_type", f"Unsupported grant type: {grant}")
    return await handler(ctx, form)
