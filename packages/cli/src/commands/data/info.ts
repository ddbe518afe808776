import { infoCommand } from '../../artifact-commands.js';

export default infoCommand('data');
