/** The hidden command the upgrade watcher runs as (`tentacle upgrade-watch --instance N`, src/cli/tentacle.ts); pid checks look for it. */
export const UPGRADE_WATCH_COMMAND = 'upgrade-watch';
