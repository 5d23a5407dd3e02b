/** `workstation-backup <command>`: see `program.ts`, or run with `--help`. */
import { runCli } from './program.js';

process.exit(await runCli(process.argv));
