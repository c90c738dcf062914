-- Tasks of kind upgrade-tentacle (reef machines upgrade, src/server/tasks/kinds/upgrade-tentacle.ts).
ALTER TABLE tasks DROP CONSTRAINT tasks_kind_check;
ALTER TABLE tasks ADD CONSTRAINT tasks_kind_check CHECK (kind IN ('run-script', 'push-file', 'health-check', 'upgrade-tentacle'));
