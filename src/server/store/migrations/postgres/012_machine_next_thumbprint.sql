-- Tentacle certificate rotation: the same column as migrations/sqlite/012_machine_next_thumbprint.sql.
ALTER TABLE machines ADD COLUMN next_thumbprint text COLLATE "C";
CREATE UNIQUE INDEX machines_next_thumbprint ON machines (next_thumbprint);

-- Task kinds: the list in tasks.kind's CHECK is dropped (see the SQLite migration of the
-- same number); src/server/store/input.ts checks the kind on every insert.
ALTER TABLE tasks DROP CONSTRAINT IF EXISTS tasks_kind_check;
