-- The releases the schema gate accepted (chalicelib/migrate/rollback.py), each with the
-- last time it became the one serving.  An Update that brings back the release accepted
-- just before the outgoing one is CloudFormation's rollback (or a deliberate redeploy of
-- that release): the gate then applies nothing, takes no lock and answers SUCCESS.
-- migrate's alone, like the migration history: no grant to the runtime role.
CREATE TABLE schema_gate_releases (
    release text PRIMARY KEY,
    accepted_at timestamptz NOT NULL DEFAULT now()
);
