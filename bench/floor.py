"""The floor (issue 9): the fewest calls a migration needs, and the least time they can take, from the data.

For N migrated users, P of them with DIRECT permissions, R roles with m_r members (M_r members of the
role in the target when it is verified), F import files (B bytes of import JSON, all users' import
records, compact), a tenant that allows `rate` Management API calls a second and takes J seconds
(`job_seconds`) over a bulk job::

    F       = ceil(B / 512,000)                         import files (Auth0 refuses 512,000 bytes: 413)
    calls   = 1 token + 2 connection look-ups + 3 source export (create, poll, download)
            + ceil(R/100) + sum_r ceil(max(1, m_r)/100)  roles and their members, 100 a page
            + N                                         DIRECT permissions read in the source
            + 2F (+ 1 per job with failed users)        import jobs (create, poll; + errors read)
            + 3                                         ONE target export: id map AND profile verification
            + sum_r ceil(m_r/100) + P                   roles assigned in batches, permissions written
            + sum_r ceil(max(1, M_r)/100) + P           verify: role members set-wise, permissions of the P users
      keep in one tenant (`--delete-source-connection`) adds:
            + 1 + 1                                     the source connection deleted, and a read confirming it
        and writes and verifies the grants above ONCE, after that deletion (M_r: members after it): the
        target user shares its source copy's id, and Auth0 keys grants by the id, so before the deletion
        the id holds the source's grants already (a write is a no-op, a read-back reads the source copy);
        after it the write and the read-back are the ones that count, whether the deletion dropped the
        grants or not.

    seconds = J                                         source export
            + max((ceil(R/100) + sum pages + N) / rate, J x ceil(F/2))
                                                        grants read while the import jobs run, two at a time
            + J                                         target export
            + (writes + verification reads) / rate      (keep: + the cutover's calls)

M_r is measured, not assumed: the role's members in the target after the run (in one tenant the
target users join the same role as their source copies, so M_r is about 2 m_r for `regenerate` and
`prefix`; with `keep` the members after cutover, the target copies alone, so M_r = m_r). Latency is
left out (enough requests in flight hide it), and so are the calls outside the formula: the token, the
connection look-ups, the job creates and polls and the downloads are counted in `calls` but take no
time in `seconds`.
The organizations term of the issue (ceil(O/100) + sum_k ceil(max(1, o_k)/100), read, written and
verified) is 0 here: the benchmark's data holds no organizations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

IMPORT_LIMIT = 512_000
"""Auth0's import request limit ("500 KB"): a request of 512,000 bytes or more is refused with 413."""
ROLE_PAGE = 100
ROLE_BATCH = 100
ROLES_PAGE = 100


@dataclass
class FloorInputs:
    users: int
    """N: users migrated (each gets one permissions read in the source)."""
    role_members: list[int]
    """m_r: direct members of each source role (among the migrated users)."""
    users_with_permissions: int
    """P: users with at least one DIRECT permission (one write, one read-back each)."""
    import_bytes: int
    """B: bytes of every migrated user's import record, as compact JSON."""
    role_members_in_target: list[int] | None = None
    """M_r: members of each role in the target when verified (None: m_r)."""
    jobs_with_failures: int = 0


@dataclass
class Floor:
    calls: int
    seconds: float
    by_item: dict[str, int] = field(default_factory=dict)
    import_files: int = 0


def pages(count: int, size: int) -> int:
    """Pages a listing of `count` items takes (an empty listing still takes one call)."""
    return max(1, math.ceil(count / size))


def floor(inputs: FloorInputs, strategy: str, *, rate: float, job_seconds: float) -> Floor:
    """The floor calls and seconds for one user-id strategy (see the module docstring)."""
    m = inputs.role_members
    big_m = inputs.role_members_in_target if inputs.role_members_in_target is not None else m
    n, p = inputs.users, inputs.users_with_permissions
    files = math.ceil(inputs.import_bytes / IMPORT_LIMIT) if inputs.import_bytes else 0
    reads = {
        "role listing": math.ceil(len(m) / ROLES_PAGE),
        "role-member pages": sum(pages(x, ROLE_PAGE) for x in m),
        "permission reads (source)": n,
    }
    writes = {
        "role assignment batches": sum(math.ceil(x / ROLE_BATCH) for x in m),
        "permission writes": p,
        "verify role-member pages": sum(pages(x, ROLE_PAGE) for x in big_m),
        "verify permission reads": p,
    }
    if strategy == "keep":
        writes["delete the source connection"] = 1
        writes["confirm it is gone"] = 1
    items = {
        "token": 1,
        "connection look-ups": 2,
        "source export (create, poll, download)": 3,
        **reads,
        "import jobs (create, poll)": 2 * files + inputs.jobs_with_failures,
        "target export (create, poll, download)": 3,
        **writes,
    }
    calls = sum(items.values())
    seconds = (job_seconds + max(sum(reads.values()) / rate, job_seconds * math.ceil(files / 2))
               + job_seconds + sum(writes.values()) / rate)
    return Floor(calls=calls, seconds=seconds, by_item=items, import_files=files)
