import { initCommand } from '../../artifact-commands.js';

export default initCommand('model');
