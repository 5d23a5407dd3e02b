import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TEMP_PURPOSES, parseTempName, tempPath } from '../../src/shared/runtime/files.js';

describe('temp file names', () => {
  it('say why the file exists and which process made it, for every purpose', () => {
    for (const purpose of TEMP_PURPOSES) {
      for (const subject of [undefined, 42]) {
        const name = path.basename(tempPath('/x', purpose, subject));
        expect(parseTempName(name)).toEqual({ purpose, pid: process.pid });
        // A packed copy keeps the name of its snapshot with an extension.
        expect(parseTempName(`${name}.db.gz.enc`)).toEqual({ purpose, pid: process.pid });
      }
    }
  });

  it('tell a blank token file from the token file, and leave other names alone', () => {
    expect(parseTempName('.tmp-blank-api-token-123-0123456789ab')).toEqual({ purpose: 'blank-api-token', pid: 123 });
    expect(parseTempName('.tmp-api-token-123-0123456789ab')).toEqual({ purpose: 'api-token', pid: 123 });
    expect(parseTempName('.tmp-something-else')).toEqual({ purpose: undefined, pid: undefined });
    expect(parseTempName('workstation-backup-2026-11-25T12-00-00.db')).toBeNull();
  });
});
