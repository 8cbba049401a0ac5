#!/usr/bin/env node
// A stand-in for the DuckDB command-line client where only npm reaches
// DuckDB: `duckdb-node.js -c "SQL; SQL"` runs each statement and prints
// its rows as JSON.  For `make bench` with DUCKDB=tests/bench/duckdb-node.js,
// after `npm install @duckdb/node-api` in this folder or above it (not a
// dependency of meshfs).  Its peak RSS includes node's (~45 MiB).
const { DuckDBInstance } = require('@duckdb/node-api');

(async () => {
  const at = process.argv.indexOf('-c');
  if (at < 0 || at + 1 >= process.argv.length) {
    console.error('usage: duckdb-node.js -c SQL');
    process.exit(2);
  }
  const instance = await DuckDBInstance.create(':memory:');
  const con = await instance.connect();
  for (const statement of process.argv[at + 1].split(';').map((s) => s.trim()).filter(Boolean)) {
    const reader = await con.runAndReadAll(statement);
    console.log(JSON.stringify(reader.getRowsJson()));
  }
})().catch((e) => {
  console.error(String(e));
  process.exit(1);
});
