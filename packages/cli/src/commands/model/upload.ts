import { uploadCommand } from '../../artifact-commands.js';

export default uploadCommand('model');
