"""The benchmark of issue 4: how close `auth0-migrate run` keeps to the rate-limit floor, and the local work.

    python -m bench [--users N] [--json]              migration mode (default 5,000 users)
    python -m bench --offline [--users N] [--json]    local work alone (default 1,000,000 users)

`bench.floor` holds the floor formula; `bench.migration` the seeded tenant and one run per user-id
strategy; `bench.baseline` the per-user script; `bench.offline` the export -> import-file path.
"""
