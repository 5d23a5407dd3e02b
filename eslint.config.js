import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * The layers of src/shared, lowest first (docs/ARCHITECTURE.md, "Layers of src/shared"). A folder
 * imports itself and the folders of lower layers only: never a folder of its own layer or above.
 */
const SHARED_LAYERS = [
  ['domain'],
  ['runtime'],
  ['codec'],
  ['catalog'],
  ['storage', 'locking', 'jobs'],
  ['observability', 'sqlite'],
  ['backup', 'verify'],
  ['restore', 'wal'],
  ['operations'],
];

/** src/shared imports none of the processes. */
const NO_PROCESS = { group: ['**/producer/**', '**/worker/**', '**/cli/**'], message: 'src/shared imports none of the processes' };

/** One `no-restricted-imports` per folder of src/shared: its own layer and those above are refused. */
function sharedLayerRules() {
  return SHARED_LAYERS.flatMap((layer, i) =>
    layer.map((folder) => {
      const below = SHARED_LAYERS.slice(0, i).flat();
      const refused = SHARED_LAYERS.slice(i)
        .flat()
        .filter((f) => f !== folder);
      const may = below.length ? below.join(', ') : 'no other folder';
      const layerRule = refused.length && {
        // `../wal/…` from a folder, `../../wal/…` from a subfolder, or any path through shared/wal/.
        regex: `^(\\.\\./)+(${refused.join('|')})(/|$)|(^|/)shared/(${refused.join('|')})(/|$)`,
        message: `layers of src/shared (docs/ARCHITECTURE.md): ${folder}/ may import ${may}, not a folder of its own layer or above`,
      };
      return {
        files: [`src/shared/${folder}/**`],
        rules: { 'no-restricted-imports': ['error', { patterns: [NO_PROCESS, ...(layerRule ? [layerRule] : [])] }] },
      };
    }),
  );
}

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        fetch: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // process.env is read in one place only: src/shared/runtime/config.ts.
      'no-restricted-properties': [
        'error',
        { object: 'process', property: 'env', message: 'read configuration through src/shared/runtime/config.ts' },
      ],
    },
  },
  {
    // The operator page's script: browser modules, served as written (src/producer/admin/router.ts).
    files: ['src/producer/admin/assets/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: {
        // What the page's script reaches of the browser; a name not listed here is a lint error.
        window: 'readonly',
        document: 'readonly',
        fetch: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        HTMLButtonElement: 'readonly',
        HTMLDialogElement: 'readonly',
        HTMLInputElement: 'readonly',
        HTMLSelectElement: 'readonly',
        SVGSVGElement: 'readonly',
        // Node's, from the section above: none of them exists in a browser.
        process: 'off',
        Buffer: 'off',
        setImmediate: 'off',
      },
    },
  },
  {
    files: ['src/producer/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/worker/**', '**/cli/**'] }] },
  },
  {
    files: ['src/worker/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/producer/**', '**/cli/**'] }] },
  },
  {
    files: ['src/cli/**'],
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/producer/**', '**/worker/**'] }] },
  },
  // A folder of src/shared missing from SHARED_LAYERS still imports no process (test/unit/layers.test.ts lists them all).
  { files: ['src/shared/**'], rules: { 'no-restricted-imports': ['error', { patterns: [NO_PROCESS] }] } },
  ...sharedLayerRules(),
  {
    files: ['src/shared/runtime/config.ts', 'test/**', 'bench/**', 'vitest.config.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
);
