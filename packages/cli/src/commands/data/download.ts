import { downloadCommand } from '../../artifact-commands.js';

export default downloadCommand('data');
