import { createLogger } from '../../logging.js';
import { loadInstance } from '../config.js';
import { restartInstanceService, watchUpgrade } from './watch.js';

/** `tentacle upgrade-watch --instance N`: watches the instance's pending upgrade to its end. */
export async function runUpgradeWatch(instance: string): Promise<void> {
  const logger = createLogger('tentacle-upgrade-watch');
  const { config } = await loadInstance(instance);
  const outcome = await watchUpgrade({ home: config.home, logger, restartService: (state) => restartInstanceService(config.home, state, logger) });
  logger.info({ instance, outcome }, 'upgrade watch ended');
}
