import { Command, CommanderError } from 'commander';
import { codeOf, messageOf } from '../shared/domain/errors.js';
import { registerBackup } from './commands/backup.js';
import { registerDrill } from './commands/drill.js';
import type { RegisterCommand } from './commands/command.js';
import { registerList } from './commands/list.js';
import { registerReindex } from './commands/reindex.js';
import { registerRestore } from './commands/restore.js';
import { registerStats } from './commands/stats.js';
import { registerWindow } from './commands/window.js';
import { registerVerify } from './commands/verify.js';
import { cliContext, type GlobalOptions } from './context.js';
import { CliError, EXIT, Output, type ExitCode } from './output.js';

/** In the order `--help` lists them. */
const COMMANDS: RegisterCommand[] = [
  registerList,
  registerBackup,
  registerVerify,
  registerRestore,
  registerReindex,
  registerStats,
  registerWindow,
  registerDrill,
];

/** Builds the program. Exported for `--help` checks; `runCli` runs it. */
export function buildProgram(run: (code: ExitCode) => void): Command {
  const program = new Command('workstation-backup')
    .description(
      'Back up, verify and restore the Workstation database without the service: reads the catalog and the backup files ' +
        'directly, works with Redis and the API down. Configured by the same environment variables as the service.',
    )
    .option('--json', 'print one JSON document for scripts instead of text')
    .option('-v, --verbose', 'log progress (JSON lines) to stderr')
    .showHelpAfterError()
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 1 failed (or restore declined), 2 bad usage or configuration (or restore with no terminal and no --yes), 3 another backup or restore is running, 4 no such backup, 5 backup invalid.',
    );
  const ctx = () => cliContext(program.opts<GlobalOptions>());
  for (const register of COMMANDS) register(program, { ctx, run });
  return program;
}

/** Runs the CLI and returns its exit code; never throws. */
export async function runCli(argv: string[]): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram((c) => {
    code = c;
  });
  program.exitOverride();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version are not errors.
      if (err.exitCode === 0) return EXIT.ok;
      return EXIT.usage;
    }
    const out = new Output(json);
    if (err instanceof CliError) {
      out.error(err);
      return err.exitCode;
    }
    out.error(new CliError(messageOf(err), EXIT.failed, codeOf(err) ?? 'error', { cause: err }));
    return EXIT.failed;
  }
}
