"""Password hashes in Auth0's bulk-import format: verify them, make them, redact them.

Modules: `digests` (digests by Auth0's names, plain, HMAC and PBKDF2), `encodings` (Node's
`Buffer` encodings), `algorithms` (verify and make each algorithm's credential), `lengths`
(digests that can never match), `redact` (where secrets sit, and hiding them). The login-side
entry, `verify_password`, is the local tenant's: `auth0_migrate.tenant.credentials`.

Why this module exists
----------------------
The migration carries password hashes from one Auth0 database connection to another, and the
local tenant used in tests and the demo has to log users in with those hashes exactly as Auth0
would.  Auth0 accepts two shapes in an import file (reference §2.6-2.7):

* ``password_hash``: a bcrypt string that must match :data:`PASSWORD_HASH_PATTERN` (cost 10).
* ``custom_password_hash``: ``{"algorithm", "hash": {value, encoding, digest, key}, "salt",
  "password": {encoding}, keylen, cost, blockSize, parallelization}`` for argon2, bcrypt, hmac,
  ldap, md4, md5, sha1, sha256, sha512, pbkdf2 and scrypt.

Auth0 runs on Node.js, so wherever the docs leave a detail open this module copies what Node's
``Buffer`` and ``crypto`` do (checked against Node 20 while writing it):

* ``Buffer.from(s, "hex")`` decodes pairs up to the first invalid one; ``"base64"`` accepts both
  the standard and the URL-safe alphabet, skips characters outside them and stops at ``=``.
  That is why upper/lower-case hex and URL-safe base64 are all accepted.
* ``password.encoding`` is the encoding the password had when the hash was made.  ``ascii``,
  ``latin1`` and ``binary`` keep the low byte of each UTF-16 code unit (Node's behaviour, not
  Python's strict codecs); ``utf16le``/``ucs2`` are UTF-16LE; ``utf8`` turns lone surrogates
  into U+FFFD.
* Salt and password are concatenated as bytes (``prefix``: salt+password, the default).
* bcrypt reads at most 72 bytes, salt included; Node's bcrypt truncates silently, while the
  Python ``bcrypt`` 5 package raises, so this module truncates before calling it.

Failure policy: a wrong password, or a credential that is malformed or that Auth0 itself would
not accept for login (``{CRYPT}``, unknown algorithm, undecodable value), gives ``False``.  No
exception raised from ``verify_password`` ever carries hash material.  The one exception is
:class:`UnsupportedDigestError`: the credential is one Auth0 supports but this host cannot
compute (MDC-2 when OpenSSL's legacy provider is not loaded).  Answering ``False`` there would
silently lock users out, so it is raised instead, naming only the digest.  MD4, RIPEMD-160 and
Whirlpool, which OpenSSL 3 moved to the legacy provider, come from maintained libraries when
OpenSSL lacks them (`digests`), so they always work.

Comparisons of derived bytes use :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

from .algorithms import PASSWORD_HASH_PATTERN, bcrypt_hash, make_credential
from .digests import UnsupportedDigestError, digest_available
from .lengths import DIGEST_SIZES, digest_length_problem
from .redact import REDACTED, redact, secret_values

__all__ = [
    "DIGEST_SIZES",
    "PASSWORD_HASH_PATTERN",
    "REDACTED",
    "UnsupportedDigestError",
    "bcrypt_hash",
    "digest_available",
    "digest_length_problem",
    "make_credential",
    "redact",
    "secret_values",
]
