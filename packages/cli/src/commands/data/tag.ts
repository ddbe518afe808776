import { tagCommand } from '../../artifact-commands.js';

export default tagCommand('data');
