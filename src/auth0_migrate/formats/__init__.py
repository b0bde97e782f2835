"""The files and records a migration reads and writes, parsed and built here, for the stages to use.

- `hash_file`      the password-hash file Auth0 support hands over (read by `stages.hashes`)
- `users_file`     a users file given with `--from-file` (read by `stages.export`)
- `import_record`  an exported user -> the record Auth0's bulk import takes (used by `stages.transform`)
- `import_file`    import records packed into files under Auth0's 500 KB limit (`stages.transform`, `seed`)

These modules are helpers, not steps of the pipeline: pure code over bytes, dicts and files, with no
ledger and no Auth0 calls, so each is tested on its own (tests/unit) and can be reused by the local
tenant's seeding.
"""
