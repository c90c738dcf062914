-- Tentacle certificate rotation (src/server/tasks/kinds/rotate-machine-certificate.ts): the
-- thumbprint of the certificate a Tentacle made next, recorded over its pinned link. Until
-- it is made the machine's thumbprint, a connection presenting either is that machine's.
-- UNIQUE: a pending thumbprint belongs to one machine only. The PostgreSQL migration of the
-- same number adds the same column.
ALTER TABLE machines ADD COLUMN next_thumbprint TEXT;
CREATE UNIQUE INDEX machines_next_thumbprint ON machines (next_thumbprint);
