export function labCommand(y: import('yargs').Argv): import('yargs').Argv { return y; }
