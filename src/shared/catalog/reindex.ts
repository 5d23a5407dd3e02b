// Where the processes find the catalog's recovery: importing manifests (manifest-import.ts) and
// checking and rebuilding the catalog file (rebuild.ts). One entry point, so moving code
// between those two does not move every caller's import.
export { reindex, type ReindexOptions, type ReindexReport } from './manifest-import.js';
export { catalogIsSound, moveCatalogAside, rebuildCatalog } from './rebuild.js';
