import fs from 'node:fs';
import path from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/root.js';

// The layers of src/shared (docs/ARCHITECTURE.md) as eslint.config.js enforces them, proven on
// snippets linted as if they were files of the folder named.
const eslint = new ESLint({ cwd: ROOT });

async function importErrors(file: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: path.join(ROOT, file) });
  return result!.messages.map((m) => `${m.ruleId}: ${m.message}`);
}

const probe = (spec: string) => `import { thing } from '${spec}';\nexport const used = thing;\n`;

describe('the layers of src/shared', () => {
  it('refuse an import of a higher folder, naming the rule', async () => {
    const errors = await importErrors('src/shared/runtime/layer-probe.ts', probe('../jobs/cancel.js'));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^no-restricted-imports: .*layers of src\/shared \(docs\/ARCHITECTURE\.md\): runtime\/ may import domain,/);
  });

  it('let an import of a lower folder through', async () => {
    expect(await importErrors('src/shared/runtime/layer-probe.ts', probe('../domain/errors.js'))).toEqual([]);
    expect(await importErrors('src/shared/runtime/layer-probe.ts', probe('./config.js'))).toEqual([]);
    expect(await importErrors('src/shared/operations/layer-probe.ts', probe('../wal/window.js'))).toEqual([]);
  });

  it('refuse a type import from a subfolder, and a folder of the same layer', async () => {
    const typeOnly = `import type { BackupStorage } from '../../storage/storage.js';\nexport type S = BackupStorage;\n`;
    expect(await importErrors('src/shared/catalog/repositories/layer-probe.ts', typeOnly)).toEqual([
      expect.stringMatching(/layers of src\/shared .*catalog\//),
    ]);
    expect(await importErrors('src/shared/storage/layer-probe.ts', probe('../locking/lock.js'))).toEqual([
      expect.stringMatching(/layers of src\/shared .*storage\//),
    ]);
  });

  it('cover every folder: all but the top one refuse operations/', async () => {
    const folders = fs
      .readdirSync(path.join(ROOT, 'src/shared'), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders).toContain('operations');
    for (const folder of folders.filter((f) => f !== 'operations')) {
      const errors = await importErrors(`src/shared/${folder}/layer-probe.ts`, probe('../operations/run.js'));
      expect(errors, folder).toEqual([expect.stringMatching(new RegExp(`layers of src/shared .*${folder}/ may import`))]);
    }
  });

  it('keep the processes apart, and src/shared off them', async () => {
    expect(await importErrors('src/worker/layer-probe.ts', probe('../producer/app.js'))).toEqual([
      expect.stringMatching(/^no-restricted-imports/),
    ]);
    expect(await importErrors('src/cli/layer-probe.ts', probe('../worker/ops.js'))).toEqual([
      expect.stringMatching(/^no-restricted-imports/),
    ]);
    expect(await importErrors('src/shared/operations/layer-probe.ts', probe('../../cli/context.js'))).toEqual([
      expect.stringMatching(/src\/shared imports none of the processes/),
    ]);
  });
});
