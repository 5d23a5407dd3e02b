/** Catalog timestamps are ISO 8601 in UTC: they sort as text, and SQLite's julianday() reads them. */
export const now = (): string => new Date().toISOString();
