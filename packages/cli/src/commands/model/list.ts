import { listCommand } from '../../artifact-commands.js';

export default listCommand('model');
