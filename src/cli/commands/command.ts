import type { Command } from 'commander';
import type { CliContext } from '../context.js';
import type { ExitCode } from '../output.js';

/** What a command file needs from the program: the context (read when the command runs) and where its exit code goes. */
export interface CommandWiring {
  ctx: () => CliContext;
  run: (code: ExitCode) => void;
}

export type RegisterCommand = (program: Command, wiring: CommandWiring) => void;
