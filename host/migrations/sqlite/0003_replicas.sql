-- Several replicas on one database (docs/CONTRACTS.md, "Several replicas"). Keep in step with
-- ../postgres/0003_replicas.sql: the two are the same statements.

-- What every replica must agree on (`public_url`, `signing_alg`), recorded by the first.
CREATE TABLE server_settings (
    name TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

-- When the writer inserted the record (the export cursor's lag is measured from it), and the
-- index retention deletes by.
ALTER TABLE decisions ADD COLUMN recorded_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX decisions_by_time ON decisions (at);
