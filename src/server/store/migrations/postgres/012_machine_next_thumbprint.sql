-- Tentacle certificate rotation: the same column as migrations/sqlite/012_machine_next_thumbprint.sql.
ALTER TABLE machines ADD COLUMN next_thumbprint text COLLATE "C";
CREATE UNIQUE INDEX machines_next_thumbprint ON machines (next_thumbprint);
