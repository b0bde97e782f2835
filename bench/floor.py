"""The floor: the fewest calls a migration needs, and the least time they can take, from the data.

For N migrated users, R roles with m_r direct members each in the source, P users with at least one
DIRECT permission, B bytes of import JSON (all users' import records, compact) and a tenant that
allows `rate` Management API calls per second and takes `job_seconds` to process a bulk job::

    F              = ceil(B / 512,000)                       import files (Auth0 refuses 512,000 bytes: 413)
    calls          = 1                                       token (client-credentials grant)
                   + 2                                       connection look-ups (source, target)
                   + 3                                       source export job: create + 1 poll + download
                   + ceil(R / 100)                           role listing
                   + sum_r max(1, ceil(m_r / 100))           role-member pages (checkpoint paging, 100 a page)
                   + N                                       one read of DIRECT permissions per user (source)
                   + 2 F (+ 1 per job with failed users)     import jobs: create + 1 poll (+ errors read)
                   + 3                                       id-map export of the target: create + 1 poll + download
                   + sum_r ceil(m_r / 100)                   role assignment batches (100 users a call)
                   + P                                       one permissions write per user that has any
                   + sum_r max(1, ceil(M_r / 100))           verify: role-member pages in the target
                   + N                                       verify: one read of DIRECT permissions per user
      keep (one tenant, --delete-source-users) adds:
                   + N                                       one delete per source user (by connection and email)
                   + N                                       one read per delete, confirming the user is gone
                   + sum_r ceil(m_r / 100) + P               roles and permissions written again
                   + sum_r max(1, ceil(M'_r / 100)) + N      verified again

    seconds        = (calls - token - downloads) / rate      Management API calls at the sustained rate
                   + job_seconds x (2 + ceil(F / 2))         the two exports one after the other, imports two at a time

M_r is the role's member count in the target when it is verified: in one tenant the target users
join the same role as their source copies, so M_r = 2 m_r for `regenerate` and `prefix`; with `keep`
both copies share one id, so M_r = m_r (and M'_r = m_r after cutover). Across tenants M_r = m_r.
Latency is left out: enough requests in flight hide it. So is the rate limit's initial burst.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

IMPORT_LIMIT = 512_000
"""Auth0's import request limit ("500 KB"): a request of 512,000 bytes or more is refused with 413."""
ROLE_PAGE = 100
ROLE_BATCH = 100
ROLES_PAGE = 100


@dataclass
class FloorInputs:
    users: int
    """N: users migrated (each gets one permissions read in the source and one in the target)."""
    role_members: list[int]
    """m_r: direct members of each source role (among the migrated users)."""
    users_with_permissions: int
    """P: users with at least one DIRECT permission."""
    import_bytes: int
    """B: bytes of every migrated user's import record, as compact JSON."""
    same_tenant: bool = True
    jobs_with_failures: int = 0


@dataclass
class Floor:
    calls: int
    seconds: float
    by_item: dict[str, int] = field(default_factory=dict)
    import_files: int = 0
    unpaced_calls: int = 0
    """Calls not subject to the Management API limit (token, export downloads)."""


def pages(count: int, size: int) -> int:
    """Pages a listing of `count` items takes (an empty listing still takes one call)."""
    return max(1, math.ceil(count / size))


def floor(inputs: FloorInputs, strategy: str, *, rate: float, job_seconds: float) -> Floor:
    """The floor calls and seconds for one user-id strategy (see the module docstring)."""
    m = inputs.role_members
    n, p = inputs.users, inputs.users_with_permissions
    files = math.ceil(inputs.import_bytes / IMPORT_LIMIT) if inputs.import_bytes else 0
    if inputs.same_tenant and strategy in ("regenerate", "prefix"):
        verify_members: Iterable[int] = [2 * x for x in m]
    else:
        verify_members = m
    items = {
        "token": 1,
        "connection look-ups": 2,
        "source export (create, poll, download)": 3,
        "role listing": math.ceil(max(1, len(m)) / ROLES_PAGE),
        "role-member pages": sum(pages(x, ROLE_PAGE) for x in m),
        "permission reads (source)": n,
        "import jobs (create, poll)": 2 * files + inputs.jobs_with_failures,
        "id-map export (create, poll, download)": 3,
        "role assignment batches": sum(math.ceil(x / ROLE_BATCH) for x in m),
        "permission writes": p,
        "verify role-member pages": sum(pages(x, ROLE_PAGE) for x in verify_members),
        "verify permission reads": n,
    }
    if strategy == "keep":
        items["cutover deletes"] = n
        items["cutover confirmations"] = n
        items["re-apply role batches"] = sum(math.ceil(x / ROLE_BATCH) for x in m)
        items["re-apply permission writes"] = p
        items["re-verify role-member pages"] = sum(pages(x, ROLE_PAGE) for x in m)
        items["re-verify permission reads"] = n
    calls = sum(items.values())
    unpaced = 1 + 2  # the token and the two downloads
    seconds = (calls - unpaced) / rate + job_seconds * (2 + math.ceil(files / 2))
    return Floor(calls=calls, seconds=seconds, by_item=items, import_files=files, unpaced_calls=unpaced)
