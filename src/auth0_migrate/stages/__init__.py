"""The stages of a migration, one module each, named as DESIGN.md's pipeline names them; in order:

1. `export`       the source users, from a bulk export job (or `--from-file`), into the ledger
2. `hashes`       the support-ticket hash file indexed and joined onto those users
3. `grants`       each user's DIRECT permissions and role memberships in the source
4. `transform`    export record -> import record, validated, packed into import files
5. `import_jobs`  the files as Auth0 bulk import jobs, at most two in flight, every error kept
6. `idmap`        old id -> new id, and each profile checked, from one export of the target
7. `restore`      roles and DIRECT permissions onto the target ids
8. `verify`       every migrated user's grants read back from the target
9. `cutover`      (optional) the source copy of each verified user deleted

`context` holds what each stage is handed (`Migration`). Stages read and write the ledger only
through its named operations (`ledger.py`), and Auth0 only through `auth0/`. What they share that is
not a step of the pipeline lives outside this package, so it reads as a helper: the file formats
in `auth0_migrate.formats` and the call pool in `auth0_migrate.pool`. `pipeline.py` runs the stages.
"""
