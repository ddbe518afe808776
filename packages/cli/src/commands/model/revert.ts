import { revertCommand } from '../../artifact-commands.js';

export default revertCommand('model');
